"""Crash consistency: kill -9 a process that confirms scans as fast as it can, many times.

After every kill the store must hold every scan confirmed before it, with `seq` gapless from
1 and the hash chain and signatures intact. (More rounds: `ROUNDS=500 python -m bench crash`.)
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from pathlib import Path

from agent import keys
from agent.export import StoredRecord, read_records
from agent.store import Sealer
from agent.verify import verify_chain

ROUNDS = 50


def run_round(root: Path, start: int, rng: random.Random) -> dict[int, str]:
    """One child life; returns the scans it confirmed (seq -> code)."""
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.store.crash_child", str(root), str(start)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "READY"
    time.sleep(rng.uniform(0.0, 0.12))
    child.kill()
    child.wait()
    confirmed = {}
    with child.stdout:
        for line in child.stdout:
            if line.startswith("C ") and line.endswith("\n"):  # a torn last line was never whole
                _, seq, code = line.split()
                confirmed[int(seq)] = code
    return confirmed


def stored_events(root: Path) -> list[StoredRecord]:
    ring = keys.load(root / "keys", create=False)
    out = []
    for item in read_records(root / "data", Sealer(ring.data)):
        assert not isinstance(item, str), item
        if item.topic == "event":
            out.append(item)
    return out


def test_kill9_at_random_points_never_loses_a_confirmed_scan(tmp_path: Path) -> None:
    rng = random.Random(20261123)
    confirmed: dict[int, str] = {}
    for rnd in range(ROUNDS):
        confirmed.update(run_round(tmp_path, rnd * 1_000_000, rng))
        events = stored_events(tmp_path)
        seqs = [e.seq for e in events]
        assert seqs == list(range(1, len(seqs) + 1)), f"round {rnd}: seq not gapless"
        codes = {e.seq: json.loads(e.payload)["code"] for e in events}
        lost = {s: c for s, c in confirmed.items() if codes.get(s) != c}
        assert not lost, f"round {rnd}: confirmed but not stored: {lost}"
    ring = keys.load(tmp_path / "keys", create=False)
    report = verify_chain([e.payload for e in stored_events(tmp_path)], ring.public)
    assert report.ok, report.problems[:5]
    assert len(confirmed) > ROUNDS  # the child really did confirm scans between kills
