"""`drivers.open_scanner`: options in, driver thread out; a driver that cannot be set up is
skipped, never fatal."""

from __future__ import annotations

import ast
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from drivers import ScannerThread, ScanSink, open_scanner
from drivers.serial import SerialOptions, SerialScanner


@dataclass(frozen=True)
class UnbuildableOptions:
    """A driver whose library is missing (as pyzbar without libzbar0)."""

    name: str

    def make_thread(self, sink: ScanSink, stop: threading.Event) -> ScannerThread:
        raise ImportError("libzbar.so.0: cannot open shared object file")


def test_options_become_their_driver_thread_not_started() -> None:
    thread = open_scanner(SerialOptions("counter", "/dev/ttyACM0"), print, threading.Event())
    assert isinstance(thread, SerialScanner)
    assert thread.name == "scanner-counter"
    assert thread.daemon
    assert not thread.is_alive()
    assert thread.state.snapshot().open is False


def test_a_driver_that_cannot_be_set_up_is_skipped_not_fatal(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="drivers"):
        assert open_scanner(UnbuildableOptions("cam"), print, threading.Event()) is None
    assert "scanner cam: cannot be set up (libzbar.so.0" in caplog.text


def test_options_refuse_what_no_driver_can_use() -> None:
    with pytest.raises(ValueError, match="terminator"):
        SerialOptions("s", "/dev/ttyACM0", terminator="etx")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no serial port"):
        SerialOptions("s", "")


def test_drivers_import_nothing_from_the_agent() -> None:
    root = Path(__file__).resolve().parents[2] / "drivers"
    for module in sorted(root.glob("*.py")):
        tree = ast.parse(module.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            assert not any(n == "agent" or n.startswith("agent.") for n in names), module.name
