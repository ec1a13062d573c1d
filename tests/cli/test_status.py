"""`tracescan status` where the agent is not running: exit statuses and messages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from agent.config import load
from agent.daemon import Agent
from drivers import RawScan
from hardware_sim.workload import unit_codes
from tests.cli.conftest import one_line_message, tracescan


def scanned(cfg: Path, n: int) -> None:
    """The agent stored `n` scans on this station and stopped."""
    agent = Agent(load(cfg), feedback=[])
    for code in unit_codes(n):
        agent.process([RawScan(code, "counter", 1.7e9)])
    agent.close()


def test_a_station_that_never_ran_is_not_running_and_says_why(station: Path) -> None:
    r = tracescan("status", "--config", str(station))
    assert r.returncode == 3
    one_line_message(r, "the agent is not running", "nothing was ever stored", "device.data_dir")
    assert r.stdout == ""
    assert not (station.parent / "keys").exists()


def test_a_stopped_agent_exits_3_with_the_figures_from_the_store(station: Path) -> None:
    scanned(station, 3)
    r = tracescan("status", "--json", "--config", str(station))
    assert r.returncode == 3
    figures = json.loads(r.stdout)
    assert figures["unsent"] == 3
    assert figures["online"] is None


def test_with_the_local_api_off_running_or_not_is_unknown(station: Path) -> None:
    station.write_text(station.read_text() + "[api]\nenabled = false\n")
    scanned(station, 1)
    r = tracescan("status", "--config", str(station))
    assert r.returncode == 4
    assert "local API off; read from the store" in r.stdout


def test_a_reader_that_goes_away_is_no_error(station: Path) -> None:
    """`tracescan status | head -1`: the pipe closes before status writes."""
    scanned(station, 2)
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent", "status", "--config", str(station)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    proc.stdout.close()  # `head` read its line and left
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 141  # 128 + SIGPIPE, as a shell reports a closed pipe
    assert err == ""


def test_data_dir_that_is_a_file(station: Path) -> None:
    (station.parent / "data").write_text("")
    r = tracescan("status", "--config", str(station))
    assert r.returncode == 78
    one_line_message(r, "device.data_dir", "is a file, not a directory")
