"""No trace code, serial or batch appears in plaintext in any file under data_dir."""

from __future__ import annotations

from pathlib import Path

from drivers import RawScan
from hardware_sim.workload import unit_codes
from tests.harness import InProcessAgent, agent_config, load_config


def test_scanned_codes_and_serials_are_nowhere_in_data_dir(tmp_path: Path) -> None:
    agent = InProcessAgent(load_config(tmp_path, agent_config(tmp_path)))
    codes = unit_codes(50, start=424242)
    refused = ["6901234567892", "81234569999999"]
    for code in [*codes, *refused]:
        agent.process([RawScan(code, "t", 1.7e9)])
    # keep the WAL (no checkpoint): it must be just as unreadable as the main file
    files = [p for p in (tmp_path / "data").rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"tracescan.db", "tracescan.db-wal", "tracescan.db-shm"}
    needles = [c.encode() for c in codes + refused] + [c[7:16].encode() for c in codes]
    for p in files:
        data = p.read_bytes()
        found = [n for n in needles if n in data]
        assert not found, f"{p.name} holds {found[:3]}"
    agent.close()
    for p in (tmp_path / "keys").iterdir():
        assert p.stat().st_mode & 0o077 == 0
