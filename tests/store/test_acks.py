"""Sent state as appended runs of row ids: out-of-order acks, repeats, pruning, old stores."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.store import Limits, OutboxReader, Sealer, Store, acks
from agent.store.acks import AckRuns, Run, runs_of
from agent.store.audit import read_records
from agent.store.schema import MIGRATIONS
from tests.store.conftest import make_events


def test_runs_merge_overlaps_and_leave_gaps() -> None:
    runs = AckRuns()
    for lo, hi in [(5, 7), (1, 2), (10, 10), (8, 9)]:
        runs.add(Run(lo, hi, 1.0))
    assert [(r.lo, r.hi) for r in runs] == [(1, 2), (5, 7), (8, 9), (10, 10)]
    assert list(runs.gaps(0, 12)) == [(3, 4), (11, 12)]
    assert list(runs.gaps(4, 12)) == [(11, 12)]
    assert list(runs.gaps(2, 3)) == [(3, 3)]
    assert runs.find(6) == Run(5, 7, 1.0)
    assert runs.find(3) is None
    runs.add(Run(5, 10, 2.0))  # a merged run absorbs the runs it covers
    assert [(r.lo, r.hi, r.at) for r in runs] == [(1, 2, 1.0), (5, 10, 2.0)]
    assert runs_of([9, 3, 4, 4, 5, 1]) == [(1, 1), (3, 5), (9, 9)]
    assert runs.new_runs([1, 2, 3, 4, 11], 3.0) == [Run(3, 4, 3.0), Run(11, 11, 3.0)]


def test_out_of_order_and_repeated_acks_leave_exactly_the_rest_unsent(
    tmp_path: Path, sealer: Sealer, signing_key: Ed25519PrivateKey
) -> None:
    store = Store(tmp_path, sealer)
    events, head = make_events(store, signing_key, 30)
    rids = store.write(events, head)
    reader = OutboxReader(tmp_path, sealer)
    # the live lane's rows are acknowledged before the backlog's, some twice
    store.write([], None, acked=rids[20:25])
    store.write([], None, acked=[rids[0], rids[1], rids[22], rids[3]])
    store.write([], None, acked=rids[20:25])
    expected = [r for i, r in enumerate(rids) if i not in {0, 1, 3, *range(20, 25)}]
    assert [r.rid for r in reader.unsent(0, 100)] == expected
    assert [r.rid for r in reader.unsent(rids[19], 3)] == [rids[25], rids[26], rids[27]]
    assert [r.rid for r in reader.unsent_between(0, rids[5], 100)] == [rids[2], rids[4], rids[5]]
    depth = reader.unsent_depth()
    assert depth.unsent == len(expected)
    unsent_bytes = store.unsent_bytes
    # one run per stretch of each batch, nothing for repeats
    n_runs = store.conn.execute("SELECT COUNT(*) FROM acked").fetchone()[0]
    assert n_runs == 3
    store.close()
    again = Store(tmp_path, sealer)  # what was sent is known after a restart
    assert again.unsent_bytes == unsent_bytes
    again.write([], None, acked=expected)
    assert reader.unsent(0, 100) == []
    assert reader.unsent_depth().unsent == 0
    reader.close()
    again.close()


def test_every_record_keeps_its_send_time_until_pruned_and_runs_then_merge(
    tmp_path: Path, sealer: Sealer, signing_key: Ed25519PrivateKey
) -> None:
    store = Store(tmp_path, sealer, limits=Limits(retention_s=3600))
    events, head = make_events(store, signing_key, 12)
    rids = store.write(events, head)
    for i in range(0, 10, 2):
        store.write([], None, acked=rids[i : i + 2])
        time.sleep(0.01)
    times = {r.rid: r.sent for r in read_records(tmp_path, sealer) if not isinstance(r, str)}
    assert all(times[r] is not None for r in rids[:10])
    assert times[rids[0]] < times[rids[9]]  # type: ignore[operator]
    assert times[rids[10]] is None
    assert store.prune(now=time.time() + 7200) == 10
    # the five pruned runs are one now; rows 11 and 12 are still waiting
    assert [(r.lo, r.hi) for r in store.done] == [(rids[0], rids[9])]
    reader = OutboxReader(tmp_path, sealer)
    assert [r.rid for r in reader.unsent(0, 100)] == rids[10:]
    reader.close()
    store.close()


def test_a_store_from_before_the_runs_is_migrated(
    tmp_path: Path, sealer: Sealer, signing_key: Ed25519PrivateKey
) -> None:
    conn = sqlite3.connect(tmp_path / "tracescan.db", isolation_level=None)
    conn.execute("PRAGMA page_size = 1024")
    conn.execute("PRAGMA journal_mode = WAL")
    for step in MIGRATIONS[:2]:
        step(conn)
    conn.execute("PRAGMA user_version = 2")
    for rid, sent in [(1, 10.0), (2, 20.0), (3, None), (4, 40.0), (5, None)]:
        conn.execute(
            "INSERT INTO outbox (rid, topic, seq, body, created, sent) VALUES (?, 'reject', NULL, ?, 1.0, ?)",
            (rid, sealer.seal(rid, b"r%d" % rid), sent),
        )
    conn.close()
    store = Store(tmp_path, sealer)
    assert [(r.lo, r.hi, r.at) for r in store.done] == [(1, 2, 20.0), (4, 4, 40.0)]
    assert store.conn.execute("PRAGMA page_size").fetchone()[0] == 1024  # kept as created
    reader = OutboxReader(tmp_path, sealer)
    assert [r.payload for r in reader.unsent(0, 10)] == [b"r3", b"r5"]
    reader.close()
    events, head = make_events(store, signing_key, 1)
    store.write(events, head, acked=[3])
    assert [(r.lo, r.hi) for r in acks.load(store.conn)] == [(1, 2), (3, 3), (4, 4)]
    store.close()
