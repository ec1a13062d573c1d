"""`tracescan keygen --rotate-data-key`: the running agent does not pick the new key up until it
is restarted, and the command says so (issue 16)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from agent.ops.localapi import ApiClient
from agent.store import DB_FILE
from hardware_sim.workload import unit_codes
from tests.cli.conftest import scanned, tracescan
from tests.harness import AgentProcess


def _key_id_of_last_record(data_dir: Path) -> int:
    """The data key that sealed the newest record (sealed layout: version, key id, ...)."""
    conn = sqlite3.connect(data_dir / DB_FILE)
    try:
        (body,) = conn.execute("SELECT body FROM outbox ORDER BY rid DESC LIMIT 1").fetchone()
    finally:
        conn.close()
    return int.from_bytes(body[1:3], "big")


def test_rotating_while_the_agent_runs_says_it_must_be_restarted(station: Path) -> None:
    data_dir = station.parent / "data"
    scanned(station, [unit_codes(1)[0]])
    agent = AgentProcess(station).start()
    try:
        assert agent.api_ready(), agent.stderr
        assert agent.proc is not None
        r = tracescan("keygen", "--rotate-data-key", "--config", str(station))
        assert r.returncode == 0, r.stderr
        assert "new data key 2" in r.stdout
        assert f"the agent is running (pid {agent.proc.pid})" in r.stdout
        assert "keeps sealing new records with data key 1 until it is restarted" in r.stdout
        # ... which is true: a scan made now is sealed with key 1.
        with ApiClient(data_dir / "api.sock") as client:
            assert client.call("submit", text=unit_codes(1, start=2)[0])["accepted"]
        assert _key_id_of_last_record(data_dir) == 1
    finally:
        assert agent.terminate() == 0
    # Restarted, it seals with the new key.
    agent = AgentProcess(station).start()
    try:
        assert agent.api_ready(), agent.stderr
        with ApiClient(data_dir / "api.sock") as client:
            assert client.call("submit", text=unit_codes(1, start=3)[0])["accepted"]
        assert _key_id_of_last_record(data_dir) == 2
    finally:
        assert agent.terminate() == 0


def test_rotating_while_the_agent_is_stopped_says_the_next_start_uses_it(station: Path) -> None:
    scanned(station, [unit_codes(1)[0]])
    r = tracescan("keygen", "--rotate-data-key", "--config", str(station))
    assert r.returncode == 0, r.stderr
    assert "the agent is not running: it seals new records with data key 2" in r.stdout
