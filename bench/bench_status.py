"""`status` on a busy store: a fresh reading vs the daemon's kept `StatusSource`.

A site that stores tens of thousands of records a day asks for status from the CLI, the local
API and, every 15-60 s, a metrics scrape. A fresh reading (what `tracescan status` does with
the agent stopped, and what every call did before) decrypts and parses every record in the
24 h window. The daemon's kept source decrypts only what was stored since its last call.

Same run: `N` events stored in bursts of 100; then a fresh reading, the kept source's first
call, `NEW` more scans, and the kept source's next call. Printed: times and the ratio of the
kept source's next call to a fresh reading.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from agent.ops.status import StatusSource, gather
from bench.bench_store import _agent
from drivers import RawScan
from hardware_sim.workload import unit_codes

N = 20_000
NEW = 100


def main() -> int:
    """Fill a store, then time the readings."""
    with tempfile.TemporaryDirectory(
        prefix="bench-status-", dir=os.environ.get("BENCH_DIR")
    ) as tmp:
        root = Path(tmp)
        agent = _agent(root)
        config = agent.config
        codes = unit_codes(N + NEW, start=1)
        now = time.time()
        for i in range(0, N, 100):
            agent.writer.process([RawScan(c, "bench", now) for c in codes[i : i + 100]])
        data_dir, cfg = config.device.data_dir, config.status
        t0 = time.perf_counter()
        fresh = gather(data_dir, agent.sealer, cfg, time.time())
        t_fresh = time.perf_counter() - t0
        source = StatusSource(data_dir, agent.sealer)
        t0 = time.perf_counter()
        source.gather(cfg, time.time())
        t_first = time.perf_counter() - t0
        agent.writer.process([RawScan(c, "bench", time.time()) for c in codes[N:]])
        t0 = time.perf_counter()
        kept = source.gather(cfg, time.time())
        t_next = time.perf_counter() - t0
        agent.close()
    accepted = fresh.operations["dispense"].accepted
    print(f"status over {accepted:,} events in the 24 h window")
    print(f"  fresh reading (decrypt and parse all) : {t_fresh * 1000:8.1f} ms")
    print(f"  kept source, first call               : {t_first * 1000:8.1f} ms")
    print(
        f"  kept source, after {NEW} new scans      : {t_next * 1000:8.1f} ms"
        f"  ({t_next / t_fresh:.3f} of a fresh reading;"
        f" sees {kept.operations['dispense'].accepted:,} events)"
    )
    return 0
