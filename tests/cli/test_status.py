"""`tracescan status` where the agent is not running: exit statuses and messages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from hardware_sim.workload import unit_codes
from tests.cli.conftest import one_line_message, restation, scanned, tracescan


def scanned_units(cfg: Path, n: int) -> None:
    """The agent stored `n` unit scans on this station and stopped."""
    scanned(cfg, unit_codes(n))


def test_a_station_that_never_ran_is_not_running_and_says_why(station: Path) -> None:
    r = tracescan("status", "--config", str(station))
    assert r.returncode == 3
    one_line_message(r, "the agent is not running", "nothing was ever stored", "device.data_dir")
    assert r.stdout == ""
    assert not (station.parent / "keys").exists()


def test_a_stopped_agent_exits_3_with_the_figures_from_the_store(station: Path) -> None:
    scanned_units(station, 3)
    r = tracescan("status", "--json", "--config", str(station))
    assert r.returncode == 3
    figures = json.loads(r.stdout)
    assert figures["unsent"] == 3
    assert figures["online"] is None


def test_with_the_local_api_off_running_or_not_is_unknown(station: Path) -> None:
    restation(station, api={"enabled": False})
    scanned_units(station, 1)
    r = tracescan("status", "--config", str(station))
    assert r.returncode == 4
    assert "local API off; read from the store" in r.stdout


def test_a_reader_that_goes_away_is_no_error(station: Path) -> None:
    """`tracescan status | head -1`: the pipe closes before status writes."""
    scanned_units(station, 2)
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
