"""`tracescan run` on a hostile station: every start-up problem is one line naming the key or
file and the fix, with exit 78 (systemd does not restart-loop on it); Ctrl-C during start-up
is a clean stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.uplink import pki
from hardware_sim.workload import unit_codes
from tests.cli.conftest import one_line_message, restation, scanned, tracescan
from tests.harness import AgentProcess


def test_data_dir_that_is_a_file(station: Path) -> None:
    (station.parent / "data").write_text("")
    r = tracescan("run", "--config", str(station))
    assert r.returncode == 78
    one_line_message(r, "device.data_dir", "is a file, not a directory")
    assert not (station.parent / "keys").exists()  # refused before anything was made


def test_data_dir_that_cannot_be_created(station: Path) -> None:
    (station.parent / "blocker").write_text("")
    restation(station, device={"data_dir": "blocker/data"})
    r = tracescan("run", "--config", str(station))
    assert r.returncode == 78
    one_line_message(r, "device.data_dir", "cannot create", "blocker/data")


def read_only(path: Path) -> list[str]:
    """A command prefix under which `path` cannot be written, even by root."""
    if os.geteuid() != 0:
        path.chmod(0o555)
        return []
    # Root writes through file modes: mount a read-only file system there instead.
    prefix = [
        "unshare",
        "-m",
        "sh",
        "-c",
        'mount -t tmpfs -o ro tmpfs "$0" && exec "$@"',
        str(path),
    ]
    if subprocess.run([*prefix, "true"], capture_output=True, check=False).returncode != 0:
        pytest.skip("root without mount namespaces: no way to make a read-only data_dir here")
    return prefix


def test_data_dir_that_is_read_only(station: Path) -> None:
    data = station.parent / "data"
    data.mkdir()
    prefix = read_only(data)
    r = subprocess.run(
        [*prefix, sys.executable, "-m", "agent", "run", "--config", str(station)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 78
    one_line_message(r, "device.data_dir", str(data), "writable")


def test_a_bad_master_data_file(station: Path) -> None:
    relations = station.parent / "relations.json"
    relations.write_text("{not json", encoding="utf-8")
    restation(station, masterdata={"relations": "relations.json"})
    r = tracescan("run", "--config", str(station))
    assert r.returncode == 78
    one_line_message(r, "cannot start", "master data", str(relations), "[masterdata]")


def test_a_mistyped_hid_key_name_is_a_config_error(station: Path) -> None:
    restation(station, scanner=[{"type": "hid", "port": "/dev/input/event0", "end_keys": ["entr"]}])
    r = tracescan("run", "--config", str(station))
    assert r.returncode == 78
    one_line_message(r, "scanner[0].end_keys", "'entr' is not a key name")


@pytest.mark.parametrize("after", [0.05, 0.15, 0.25, 0.35, 0.6])
def test_ctrl_c_during_start_up_is_a_clean_stop(station: Path, after: float) -> None:
    restation(station, api={"enabled": False})
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent", "run", "--config", str(station)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(after)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert "Traceback" not in err, err
    assert "KeyboardInterrupt" not in err
    assert proc.returncode == 0, err  # SIGINT asks `run` to stop, whenever it arrives


# --- one agent per data directory (issue 16) ---------------------------------------------------


def test_a_second_agent_on_the_same_data_dir_exits_78_naming_it_and_the_first(
    station: Path,
) -> None:
    scanned(station, [unit_codes(1)[0]])
    first = AgentProcess(station).start()
    try:
        assert first.api_ready(), first.stderr
        assert first.proc is not None
        r = tracescan("run", "--config", str(station))
        assert r.returncode == 78, r.stderr
        data_dir = str(station.parent / "data")
        one_line_message(r, "already running", data_dir, f"pid {first.proc.pid}")
        assert first.proc.poll() is None  # the first one goes on, its API still answers
        status = tracescan("status", "--json", "--config", str(station))
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["online"] is False
        # readers do not need the lock
        assert tracescan("export", "--config", str(station)).returncode == 0
    finally:
        assert first.terminate() == 0


def test_an_agent_killed_with_sigkill_does_not_block_the_next_start(station: Path) -> None:
    first = AgentProcess(station).start()
    try:
        assert first.api_ready(), first.stderr
    finally:
        first.kill9()
    second = AgentProcess(station).start()
    try:
        assert second.api_ready(), second.stderr
    finally:
        assert second.terminate() == 0
    assert any("tracescan stopped" in line for line in second.stderr)


def test_a_client_key_open_to_others_is_refused_like_the_data_keys(station: Path) -> None:
    issued = station.parent / "pki"
    pki.create_ca(issued, "test CA")
    device = pki.issue_device(issued, "s1", "d1")
    device.key.chmod(0o644)  # as `cp` under a loose umask leaves it
    restation(
        station,
        mqtt={
            "ca_file": str(issued / "ca.crt"),
            "cert_file": str(device.cert),
            "key_file": str(device.key),
        },
    )
    r = tracescan("run", "--config", str(station))
    assert r.returncode == 78
    one_line_message(r, "mqtt.key_file", "mode 0644", f"chmod 600 {device.key}")
    device.key.chmod(0o600)
    r = tracescan("status", "--config", str(station))
    assert r.returncode == 3, r.stderr  # accepted now: the agent is simply not running
