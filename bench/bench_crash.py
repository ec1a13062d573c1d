"""The long crash-consistency run: `python -m bench crash` (ROUNDS env var, default 500).

Same check as tests/store/test_crash.py, many more kill -9 rounds: after every kill the store
holds every scan confirmed before it, seq gapless from 1; at the end the whole chain and every
signature verify with the public key alone. `PAUSES=1` makes the child pause now and then past
the store's quiet period, so kills also land while the daemon's thread checkpoints the WAL.
"""

from __future__ import annotations

import os
import tempfile
import time
import traceback
from pathlib import Path

from tests.store.test_crash import check_rounds


def main() -> int:
    """Run the rounds; non-zero on the first lost or misnumbered scan."""
    rounds = int(os.environ.get("ROUNDS", "500"))
    seed = int(os.environ.get("SEED", "1"))
    pauses = os.environ.get("PAUSES") == "1"
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-crash-") as tmp:
        try:
            confirmed, checkpointed = check_rounds(Path(tmp), rounds, seed, pauses=pauses)
        except AssertionError:
            traceback.print_exc()
            return 1
    print(
        f"{rounds} kill -9 rounds in {time.monotonic() - t0:.0f} s: {len(confirmed)} confirmed "
        "scans, all present, seq gapless, chain and signatures verified"
        + (f"; {checkpointed} children had begun a pause checkpoint" if pauses else "")
    )
    return 0
