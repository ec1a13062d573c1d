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
from dataclasses import dataclass, field
from pathlib import Path

from agent.records.verify import verify_chain
from agent.store import Sealer, keys
from agent.store.audit import StoredRecord, read_records

ROUNDS = 50
PAUSE_ROUNDS = 16


@dataclass
class Round:
    """What one child life reported before its kill."""

    confirmed: dict[int, str] = field(default_factory=dict)  # seq -> code, told "accepted"
    checkpoints: int = 0  # pause checkpoints its store had begun (a pausing child says)


def run_round(root: Path, start: int, rng: random.Random, *, pauses: bool = False) -> Round:
    """One child life, killed with SIGKILL at a random moment."""
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.store.crash_child", str(root), str(start)]
        + (["pauses"] if pauses else []),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "READY"
    time.sleep(rng.uniform(0.0, 1.0 if pauses else 0.12))
    child.kill()
    child.wait()
    out = Round()
    with child.stdout:
        for line in child.stdout:
            if not line.endswith("\n"):  # a torn last line was never whole
                continue
            if line.startswith("C "):
                _, seq, code = line.split()
                out.confirmed[int(seq)] = code
            elif line.startswith("P "):
                out.checkpoints = max(out.checkpoints, int(line.split()[1]))
    return out


def stored_events(root: Path) -> list[StoredRecord]:
    ring = keys.load(root / "keys", create=False)
    out = []
    for item in read_records(root / "data", Sealer(ring.data)):
        assert not isinstance(item, str), item
        if item.topic == "event":
            out.append(item)
    return out


def check_rounds(
    root: Path, rounds: int, seed: int, *, pauses: bool = False
) -> tuple[dict[int, str], int]:
    """Kill a confirming child `rounds` times; after each, every confirmed scan is stored.

    Returns every confirmed scan, and how many of the children's stores had begun a pause
    checkpoint before their kill.
    """
    rng = random.Random(seed)
    confirmed: dict[int, str] = {}
    checkpointed = 0
    for rnd in range(rounds):
        life = run_round(root, rnd * 1_000_000, rng, pauses=pauses)
        confirmed.update(life.confirmed)
        checkpointed += life.checkpoints > 0
        events = stored_events(root)
        seqs = [e.seq for e in events]
        assert seqs == list(range(1, len(seqs) + 1)), f"round {rnd}: seq not gapless"
        codes = {e.seq: json.loads(e.payload)["code"] for e in events}
        lost = {s: c for s, c in confirmed.items() if codes.get(s) != c}
        assert not lost, f"round {rnd}: confirmed but not stored: {lost}"
    ring = keys.load(root / "keys", create=False)
    report = verify_chain([e.payload for e in stored_events(root)], ring.public)
    assert report.ok, report.problems[:5]
    assert len(confirmed) > rounds  # the child really did confirm scans between kills
    return confirmed, checkpointed


def test_kill9_at_random_points_never_loses_a_confirmed_scan(tmp_path: Path) -> None:
    check_rounds(tmp_path, ROUNDS, 20261123)


def test_kill9_during_pause_checkpoints_never_loses_a_confirmed_scan(tmp_path: Path) -> None:
    # The child pauses past the quiet period now and then, so the store's own thread copies
    # the WAL into the database file while kills keep landing at random moments.
    _, checkpointed = check_rounds(tmp_path, PAUSE_ROUNDS, 20261124, pauses=True)
    assert checkpointed > 0
