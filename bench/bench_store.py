"""The confirm path vs bare SQLite, in the same run.

1. Latency: bare `sqlite3` single-row INSERT + COMMIT (WAL, synchronous=FULL, same row size)
   vs our confirm path for one scan (recognise, judge, sign, chain, AES-GCM, HMAC, commit).
   Target: p99 ratio <= 1.5. Measured twice: the first `N_LATENCY` commits into a new database,
   while each WAL file still grows (every fsync also commits the new file size), and the next
   `N_STEADY`, once both WALs have wrapped and are rewritten in place, as in a daemon that has
   been up a while. The bare side's growing phase is a larger share of its p99 than ours.
2. Throughput: bare batched INSERT of AES-GCM-sealed rows, 100 per transaction, vs the store's
   group commit of 100 real signed events per transaction (keyed hash of each code, AES-GCM
   with the row id bound, per-code state upsert, chain head and high-water mark, one commit).
   Target: ratio >= 0.5. Also shown: the same bare rows at the store's page size, which
   separates the cost of the store's work from that of the small pages the bytes target
   needs (each 100-row commit then writes ~8x the WAL frames). Also shown, not a target: the whole confirm path for bursts of 100
   scans (recognise, judge, custody, sign, chain, then the same group commit), whose Ed25519
   signature per event alone costs more than a bare row.
3. Bytes handed to the kernel per scan (`wchar` from /proc/self/io), single-scan commits plus
   PUBACK marking in batches of 20. Target <= 4 KiB.
"""

from __future__ import annotations

import os
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from agent.config import parse
from agent.daemon import Agent
from agent.records.envelope import ChainHead
from agent.store import CodeMark, NewRecord, OutboxReader
from agent.store.schema import PAGE_SIZE
from drivers import RawScan
from hardware_sim.workload import unit_codes

N_LATENCY = 2000
N_STEADY = 1000
N_BATCHES = 50
BATCH = 100
ROW_BYTES = 520  # a sealed event as our store holds it


def _wchar() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    return 0


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _bare_conn(root: Path, page_size: int | None = None) -> sqlite3.Connection:
    conn = sqlite3.connect(root / "bare.db", isolation_level=None)
    if page_size is not None:
        conn.execute(f"PRAGMA page_size = {page_size}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB NOT NULL)")
    return conn


def _agent(root: Path) -> Agent:
    config = parse(
        {
            "device": {"id": "bench", "site": "lab", "data_dir": "data", "key_dir": "keys"},
            "mqtt": {"port": 1},
        },
        root,
    )
    return Agent(config, feedback=[])


def bench_latency(root: Path) -> tuple[list[float], list[float], float]:
    """Single-commit latencies, `N_LATENCY + N_STEADY` each, and bytes per scan over the run."""
    conn = _bare_conn(root)
    bare = []
    payload = os.urandom(ROW_BYTES)
    for _ in range(N_LATENCY + N_STEADY):
        t0 = time.perf_counter()
        conn.execute("BEGIN")
        conn.execute("INSERT INTO t (body) VALUES (?)", (payload,))
        conn.execute("COMMIT")
        bare.append(time.perf_counter() - t0)
    conn.close()
    agent = _agent(root)
    codes = unit_codes(N_LATENCY + N_STEADY, start=1)
    ours = []
    w0 = _wchar()
    for i, code in enumerate(codes):
        scan = RawScan(code, "bench", time.time())
        t0 = time.perf_counter()
        agent.writer.process([scan])
        ours.append(time.perf_counter() - t0)
        if i % 20 == 19:  # PUBACKs arrive and are marked in small batches
            agent.store.write([], None, acked=list(range(i - 18, i + 2)))
    per_scan = (_wchar() - w0) / len(codes)
    agent.close()
    return bare, ours, per_scan


def _bare_rate(root: Path, page_size: int | None = None) -> float:
    conn = _bare_conn(root, page_size)
    aead = AESGCM(os.urandom(32))
    payload = os.urandom(ROW_BYTES - 28)
    t0 = time.perf_counter()
    for b in range(N_BATCHES):
        conn.execute("BEGIN")
        for i in range(BATCH):
            nonce = os.urandom(12)
            sealed = nonce + aead.encrypt(nonce, payload, b"%d" % (b * BATCH + i))
            conn.execute("INSERT INTO t (body) VALUES (?)", (sealed,))
        conn.execute("COMMIT")
    rate = N_BATCHES * BATCH / (time.perf_counter() - t0)
    conn.close()
    return rate


def _pipeline_rate(root: Path, codes: list[str]) -> tuple[float, list[bytes]]:
    """Bursts through the whole confirm path; also returns the signed events it stored."""
    agent = _agent(root)
    now = time.time()
    batches = [
        [RawScan(c, "bench", now) for c in codes[b * BATCH : (b + 1) * BATCH]]
        for b in range(N_BATCHES)
    ]
    t0 = time.perf_counter()
    for batch in batches:
        agent.writer.process(list(batch))
    rate = N_BATCHES * BATCH / (time.perf_counter() - t0)
    reader = OutboxReader(root / "data", agent.store.sealer)
    events = [r.payload for r in reader.unsent(0, len(codes) * 2) if r.topic == "event"]
    reader.close()
    agent.close()
    return rate, events


def _store_rate(root: Path, events: list[bytes], codes: list[str]) -> float:
    """The store's group commit, fed the real signed events the pipeline run produced."""
    agent = _agent(root)
    store = agent.store
    batches = []
    for b in range(N_BATCHES):
        chunk = events[b * BATCH : (b + 1) * BATCH]
        batches.append(
            (
                [NewRecord("event", p, b * BATCH + i + 1) for i, p in enumerate(chunk)],
                codes[b * BATCH : (b + 1) * BATCH],
            )
        )
    t0 = time.perf_counter()
    for records, batch_codes in batches:
        last = records[-1].seq or 0
        marks = [
            CodeMark(store.mac(code), "dispense", rec.seq or 0)
            for rec, code in zip(records, batch_codes, strict=True)
        ]
        store.write(records, ChainHead(last, "0" * 64), marks=marks)
    rate = N_BATCHES * BATCH / (time.perf_counter() - t0)
    agent.close()
    return rate


def bench_throughput(root: Path) -> tuple[float, float, float, float]:
    for sub in ("bare", "bare512", "pipeline", "store"):
        (root / sub).mkdir()
    bare_rate = _bare_rate(root / "bare")
    bare_small = _bare_rate(root / "bare512", PAGE_SIZE)
    codes = unit_codes(N_BATCHES * BATCH, start=10_000_000)
    pipeline_rate, events = _pipeline_rate(root / "pipeline", codes)
    store_rate = _store_rate(root / "store", events, codes)
    return bare_rate, bare_small, store_rate, pipeline_rate


def main() -> int:
    """Run and print the three comparisons."""
    with tempfile.TemporaryDirectory(prefix="bench-store-", dir=os.environ.get("BENCH_DIR")) as tmp:
        root = Path(tmp)
        (root / "t").mkdir()
        bare, ours, per_scan = bench_latency(root)
        bare_rate, bare_small, store_rate, pipeline_rate = bench_throughput(root / "t")
    print("single-scan commit, WAL + synchronous=FULL")
    for label, part in (
        (f"first {N_LATENCY} commits into a new database", slice(0, N_LATENCY)),
        (f"next {N_STEADY} commits (steady state)", slice(N_LATENCY, None)),
    ):
        b50, b99 = statistics.median(bare[part]) * 1000, _pct(bare[part], 0.99) * 1000
        o50, o99 = statistics.median(ours[part]) * 1000, _pct(ours[part], 0.99) * 1000
        print(f"  {label}")
        print(f"    bare sqlite3 insert+commit : p50 {b50:.3f} ms  p99 {b99:.3f} ms")
        print(f"    tracescan confirm path     : p50 {o50:.3f} ms  p99 {o99:.3f} ms")
        print(
            f"    ratio                      : p50 {o50 / b50:.2f}x  p99 {o99 / b99:.2f}x"
            "  (target p99 <= 1.5x)"
        )
    print(f"group commit, {BATCH} per transaction")
    print(f"  bare insert + AES-GCM      : {bare_rate:,.0f} rows/s")
    print(f"  tracescan store group commit: {store_rate:,.0f} events/s")
    print(f"  ratio                      : {store_rate / bare_rate:.2f}  (target >= 0.5)")
    print(
        f"  bare at the store's {PAGE_SIZE}-byte pages: {bare_small:,.0f} rows/s;"
        f" ratio {store_rate / bare_small:.2f} (what is left once the page size is the same)"
    )
    print(
        f"  whole confirm path, bursts : {pipeline_rate:,.0f} scans/s"
        f"  ({pipeline_rate / bare_rate:.2f}; includes an Ed25519 signature per event)"
    )
    print(
        f"bytes handed to the kernel per scan (commit + PUBACK marking): {per_scan:,.0f} B (target <= 4096)"
    )
    return 0
