"""The long crash-consistency run: `python -m bench crash` (ROUNDS env var, default 500).

Same check as tests/store/test_crash.py, many more kill -9 rounds: after every kill the store
holds every scan confirmed before it, seq gapless from 1; at the end the whole chain and every
signature verify with the public key alone.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
import time
from pathlib import Path

from agent import keys
from agent.verify import verify_chain
from tests.store.test_crash import run_round, stored_events


def main() -> int:
    """Run the rounds; non-zero on the first lost or misnumbered scan."""
    rounds = int(os.environ.get("ROUNDS", "500"))
    rng = random.Random(int(os.environ.get("SEED", "1")))
    confirmed: dict[int, str] = {}
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-crash-") as tmp:
        root = Path(tmp)
        for rnd in range(rounds):
            confirmed.update(run_round(root, rnd * 1_000_000, rng))
            events = stored_events(root)
            seqs = [e.seq for e in events]
            if seqs != list(range(1, len(seqs) + 1)):
                print(f"round {rnd}: seq not gapless")
                return 1
            codes = {e.seq: json.loads(e.payload)["code"] for e in events}
            lost = [s for s, c in confirmed.items() if codes.get(s) != c]
            if lost:
                print(f"round {rnd}: {len(lost)} confirmed scan(s) missing, e.g. seq {lost[0]}")
                return 1
        ring = keys.load(root / "keys", create=False)
        report = verify_chain([e.payload for e in stored_events(root)], ring.public)
    print(
        f"{rounds} kill -9 rounds in {time.monotonic() - t0:.0f} s: {len(confirmed)} confirmed "
        f"scans, all present, seq gapless, chain {'verified' if report.ok else report.problems[:3]}"
    )
    return 0 if report.ok else 1
