"""Bounded by bytes and by the age of sent records; unsent records are never dropped."""

from __future__ import annotations

import os
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.store import BufferFull, Limits, NewRecord, OutboxReader, Sealer, Store
from tests.store.conftest import make_events


def test_full_buffer_refuses_new_events_and_keeps_every_unsent_one(
    tmp_path: Path, sealer: Sealer, signing_key: Ed25519PrivateKey
) -> None:
    store = Store(tmp_path, sealer, limits=Limits(max_bytes=20_000))
    written = 0
    while True:
        events, head = make_events(store, signing_key, 1)
        try:
            store.write(events, head)
        except BufferFull:
            break
        written += 1
        assert written < 1000, "the byte bound never took effect"
    assert 10 < written < 1000
    head_before = store.head
    # rejects past the bound are counted, not stored
    store.write([NewRecord("reject", b"x" * 5000)], None)
    assert store.rejects_dropped == 1
    reader = OutboxReader(tmp_path, sealer)
    rows = reader.unsent(0, 10_000)
    assert [r.rid for r in rows] == list(range(1, written + 1))
    # acknowledgements drain it; scans are accepted again
    store.write([], None, acked=[r.rid for r in rows[: written // 2]])
    events, head = make_events(store, signing_key, 1)
    store.write(events, head)
    assert store.head.seq == head_before.seq + 1
    reader.close()
    store.close()


def test_sent_records_are_pruned_after_retention_but_the_chain_head_stays(
    tmp_path: Path, sealer: Sealer, signing_key: Ed25519PrivateKey
) -> None:
    store = Store(tmp_path, sealer, limits=Limits(retention_s=3600))
    events, head = make_events(store, signing_key, 10)
    rids = store.write(events, head)
    store.write([], None, acked=rids[:8])
    assert store.prune(now=time.time()) == 0  # within retention
    assert store.prune(now=time.time() + 7200) == 8
    store.write([], None, acked=rids[8:])
    assert store.prune(now=time.time() + 7200) == 1  # the newest event is kept: it is the head
    store.close()
    again = Store(tmp_path, sealer)
    assert again.head == head
    more, head2 = make_events(again, signing_key, 1)
    again.write(more, head2)
    assert again.head.seq == 11
    again.close()


def test_over_the_byte_bound_the_oldest_sent_records_go_first(
    tmp_path: Path, sealer: Sealer, signing_key: Ed25519PrivateKey
) -> None:
    store = Store(tmp_path, sealer, limits=Limits(max_bytes=10**9))
    events, head = make_events(store, signing_key, 400)
    rids = store.write(events, head)
    store.write([], None, acked=rids[:300])
    used = store.used_bytes()
    store.limits = Limits(max_bytes=used // 2)
    removed = store.prune()
    assert removed > 0
    reader = OutboxReader(tmp_path, sealer)
    assert len(reader.unsent(0, 1000)) == 100  # unsent rows are untouched
    remaining = [r for (r,) in store.conn.execute("SELECT rid FROM outbox ORDER BY rid")]
    assert remaining[0] > 1
    assert remaining[-1] == 400
    reader.close()
    store.close()


def test_index_key_makes_macs_device_specific(tmp_path: Path, sealer: Sealer) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = Store(tmp_path / "a", sealer, index_key=os.urandom(32))
    b = Store(tmp_path / "b", sealer, index_key=os.urandom(32))
    assert a.mac("81234560000000011234") != b.mac("81234560000000011234")
    a.close()
    b.close()
