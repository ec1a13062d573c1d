"""`drivers.state`: what a scanner thread says about its device, and when absence is logged."""

from __future__ import annotations

import doctest
import importlib

import pytest

from drivers.state import AbsenceWatch, ScannerState


@pytest.mark.parametrize("name", ["drivers.state", "drivers.reconnect"])
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0
    assert result.failed == 0


def test_state_follows_open_scan_loss_and_return() -> None:
    now = [100.0]
    state = ScannerState("counter", "/dev/ttyACM0", clock=lambda: now[0])
    first = state.snapshot()
    assert (first.present, first.open, first.opens, first.failures) == (False, False, 0, 0)
    assert first.absent_since == 100.0  # never opened: absent since the thread began

    now[0] = 105.0
    assert state.failed("[Errno 2] No such file or directory", present=False) is False
    assert state.snapshot().absent_since == 100.0  # still the same absence

    now[0] = 110.0
    state.opened()
    state.scanned(111.5)
    opened = state.snapshot()
    assert (opened.present, opened.open, opened.opens, opened.failures) == (True, True, 1, 1)
    assert (opened.last_scan, opened.last_error, opened.absent_since) == (111.5, None, None)
    assert state.open_event.is_set()

    now[0] = 120.0
    assert state.failed("device reports readiness to read but returned no data", present=False)
    lost = state.snapshot()
    assert (lost.open, lost.present, lost.absent_since, lost.last_scan) == (
        False,
        False,
        120.0,
        111.5,
    )
    assert lost.last_error == "device reports readiness to read but returned no data"
    assert not state.open_event.is_set()
    assert lost.as_dict()["source"] == "counter"


def test_absence_is_reported_once_then_reminded_until_the_device_returns() -> None:
    watch = AbsenceWatch(warn_after=60, remind_every=3600)
    seen = [watch.absent(float(t)) for t in range(0, 3 * 3600, 5)]
    notices = [n for n in seen if n is not None]
    assert [n.first for n in notices] == [True, False, False]
    assert [round(n.seconds) for n in notices] == [60, 3660, 7260]
    assert watch.present(3 * 3600.0) == 3 * 3600.0
    assert watch.absent(20000.0) is None  # a new absence starts its own minute
    assert watch.absent(20061.0) is not None
