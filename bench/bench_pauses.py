"""Single-scan commits in bursts with pauses: does any commit still pay for a WAL checkpoint?

Scanning comes in bursts: a pallet, a basket, a delivery note, then a pause. The daemon's store
copies the WAL into the database in those pauses (agent/store/checkpoint.py); without that,
SQLite checkpoints on whichever commit crosses its autocheckpoint, and that worker waits.

Same run, same machine: `BURSTS` bursts of `PER_BURST` single-scan commits (a real signed
event and its code-state upsert each) with `PAUSE_S` between bursts, into a store that
checkpoints in pauses and into one that leaves it to SQLite. Printed: how many checkpoints ran
in the pauses, and the commit latencies at the tail, with their ratio.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.records.signing import sign_event
from agent.store import CodeMark, NewRecord, Sealer, Store
from bench.bench_store import _pct
from hardware_sim.workload import unit_codes

BURSTS = 12
PER_BURST = 250  # ~1,400 WAL pages: a burst stays under the 2048-page autocheckpoint
PAUSE_S = 0.4


def _run(root: Path, *, in_pauses: bool) -> tuple[list[float], int]:
    key = Ed25519PrivateKey.generate()
    store = Store(
        root, Sealer(os.urandom(32)), index_key=os.urandom(32), background_checkpoint=in_pauses
    )
    head = store.head
    codes = unit_codes(BURSTS * PER_BURST, start=1)
    latencies = []
    for burst in range(BURSTS):
        for code in codes[burst * PER_BURST : (burst + 1) * PER_BURST]:
            seq = head.seq + 1
            sealed = sign_event({"v": 1, "seq": seq, "prev": head.hash, "code": code}, key)
            t0 = time.perf_counter()
            mark = CodeMark(store.mac(code), "dispense", seq)
            store.write([NewRecord("event", sealed.payload, seq)], sealed.head, marks=[mark])
            latencies.append(time.perf_counter() - t0)
            head = sealed.head
        time.sleep(PAUSE_S)
    runs = store.pause_checkpoints
    store.close()
    return latencies, runs


def main() -> int:
    """Run both stores and print the tail of their commit latencies."""
    with tempfile.TemporaryDirectory(
        prefix="bench-pauses-", dir=os.environ.get("BENCH_DIR")
    ) as tmp:
        (Path(tmp) / "sqlite").mkdir()
        (Path(tmp) / "pauses").mkdir()
        plain, _ = _run(Path(tmp) / "sqlite", in_pauses=False)
        ours, runs = _run(Path(tmp) / "pauses", in_pauses=True)
    print(f"{BURSTS} bursts of {PER_BURST} single-scan commits, {PAUSE_S} s pauses")
    print(f"  checkpoints run in the pauses: {runs}")
    for label, q in (("p50", 0.5), ("p99", 0.99), ("p99.9", 0.999), ("max", 1.0)):
        a, b = _pct(plain, q) * 1000, _pct(ours, q) * 1000
        print(
            f"  {label:5s}: SQLite's own checkpoints {a:.3f} ms, in the pauses {b:.3f} ms"
            f"  ({b / a:.2f}x)"
        )
    print(
        f"  mean : {statistics.mean(plain) * 1000:.3f} ms vs {statistics.mean(ours) * 1000:.3f} ms"
    )
    return 0
