"""Fixtures with real parts: mosquitto on a free port, pty scanners, SQLite files, keys."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hardware_sim.broker import LocalBroker
from hardware_sim.serial_scanner import VirtualSerialScanner
from hardware_sim.subscriber import Recorder
from hardware_sim.workload import DEMO_CATALOG_CSV
from tests.harness import AgentProcess, config_file


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[LocalBroker]:
    """A real mosquitto, persistent so a restart keeps queued messages."""
    workdir = tmp_path / "broker"
    workdir.mkdir()
    b = LocalBroker(workdir=workdir, persistence=True).start()
    yield b
    b.close()


@pytest.fixture
def recorder(broker: LocalBroker) -> Iterator[Recorder]:
    """A subscriber to everything under the default prefix."""
    r = Recorder("127.0.0.1", broker.port, "tracescan/v1/#")
    yield r
    r.close()


@pytest.fixture
def scanner(tmp_path: Path) -> Iterator[VirtualSerialScanner]:
    """A virtual serial scanner behind a stable symlink."""
    with VirtualSerialScanner(tmp_path / "ttyScanner") as s:
        yield s


@pytest.fixture
def catalog_file(tmp_path: Path) -> Path:
    """The demo catalog: 8123456 unit, 8123457 middle, 8123458 case."""
    p = tmp_path / "catalog.csv"
    p.write_text(DEMO_CATALOG_CSV, encoding="utf-8")
    return p


@pytest.fixture
def make_config(tmp_path: Path, catalog_file: Path) -> Callable[..., Path]:
    """Write an agent config with the demo catalog (see `tests.harness.agent_config`)."""

    def make(*, mqtt_port: int, port: str = "", op: str = "dispense", **sections: Any) -> Path:
        return config_file(
            tmp_path,
            mqtt_port=mqtt_port,
            op=op,
            catalog=catalog_file,
            serial_port=port or None,
            **sections,
        )

    return make


@pytest.fixture
def agent(
    broker: LocalBroker, scanner: VirtualSerialScanner, make_config: Callable[..., Path]
) -> Iterator[AgentProcess]:
    """The agent, reading the virtual scanner and publishing to the broker (not yet started)."""
    a = AgentProcess(make_config(mqtt_port=broker.port, port=scanner.port))
    yield a
    a.stop()
