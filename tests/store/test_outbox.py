"""The encrypted outbox on real SQLite files."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Final

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.records.envelope import ZERO_HASH
from agent.store import DB_FILE, CodeMark, NewRecord, OutboxReader, Sealer, Store, TamperedRecord
from agent.store.schema import PAGE_SIZE
from tests.store.conftest import make_events


def test_rows_round_trip_in_order_and_leave_when_marked_sent(
    tmp_path: Path, store: Store, sealer: Sealer, signing_key: Ed25519PrivateKey
) -> None:
    events, head = make_events(store, signing_key, 1)
    rids = store.write([events[0], NewRecord("reject", b"two")], head)
    reader = OutboxReader(tmp_path, sealer)
    rows = reader.unsent(0, 10)
    assert [(r.rid, r.topic) for r in rows] == [(rids[0], "event"), (rids[1], "reject")]
    assert rows[0].payload == events[0].payload
    store.write([], None, acked=[rids[0]])
    assert [r.rid for r in reader.unsent(0, 10)] == [rids[1]]
    assert reader.unsent_depth().unsent == 1
    reader.close()


def test_head_is_derived_from_the_newest_event_after_reopen(
    tmp_path: Path, sealer: Sealer, signing_key: Ed25519PrivateKey
) -> None:
    store = Store(tmp_path, sealer)
    assert store.head.seq == 0
    assert store.head.hash == ZERO_HASH
    events, head = make_events(store, signing_key, 5)
    store.write(events, head)
    store.write([NewRecord("reject", b"r")], None)
    store.close()
    again = Store(tmp_path, sealer)
    assert again.head == head
    more, head2 = make_events(again, signing_key, 1)
    assert again.write(more, head2) == [7]
    again.close()


def test_unsent_bytes_track_inserts_and_acks(store: Store, signing_key: Ed25519PrivateKey) -> None:
    events, head = make_events(store, signing_key, 3)
    rids = store.write(events, head)
    full = store.unsent_bytes
    assert full > sum(len(e.payload) for e in events)
    store.write([], None, acked=rids[:2])
    store.write([], None, acked=rids[:2])  # a duplicate PUBACK changes nothing
    assert 0 < store.unsent_bytes < full / 2


def test_code_state_is_keyed_by_hmac(store: Store, signing_key: Ed25519PrivateKey) -> None:
    events, head = make_events(store, signing_key, 2)
    mac = store.mac("81234560000000011234")
    assert len(mac) == 16
    # The rules decide the state; the store keeps the last one given per code in a batch.
    store.write(events, head, marks=[CodeMark(mac, "receive", 1), CodeMark(mac, "dispense", 2)])
    state = store.code_state(mac)
    assert state is not None
    assert (state.last_op, state.count, state.last_seq) == ("dispense", 1, 2)
    more, head2 = make_events(store, signing_key, 1)
    store.write(more, head2, marks=[CodeMark(mac, "sale", 3, count=2)])
    state = store.code_state(mac)
    assert state is not None
    assert (state.last_op, state.count, state.last_seq) == ("sale", 2, 3)
    # A count that drops to zero (an undone first scan) forgets the code, even when a later
    # mark in the same batch records it again: the last mark per code wins.
    store.write([], None, marks=[CodeMark(mac, "sale", 4, count=0)])
    assert store.code_state(mac) is None
    store.write([], None, marks=[CodeMark(mac, "sale", 5, count=0), CodeMark(mac, "sale", 6)])
    state = store.code_state(mac)
    assert state is not None
    assert (state.count, state.last_seq) == (1, 6)
    assert store.code_state(store.mac("81234560000000021234")) is None


def test_new_stores_use_small_pages(store: Store) -> None:
    assert store.conn.execute("PRAGMA page_size").fetchone()[0] == PAGE_SIZE
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_swapped_or_altered_rows_are_refused(
    tmp_path: Path, store: Store, sealer: Sealer, signing_key: Ed25519PrivateKey
) -> None:
    events, head = make_events(store, signing_key, 2)
    store.write(events, head)
    conn = sqlite3.connect(tmp_path / DB_FILE)
    (b1,), (b2,) = conn.execute("SELECT body FROM outbox ORDER BY rid").fetchall()
    conn.execute("UPDATE outbox SET body = ? WHERE rid = 1", (b2,))
    conn.execute("UPDATE outbox SET body = ? WHERE rid = 2", (b1,))
    conn.commit()
    conn.close()
    reader = OutboxReader(tmp_path, sealer)
    rows = reader.unsent(0, 10)
    assert [(r.tampered, r.payload) for r in rows] == [(True, b""), (True, b"")]
    reader.close()
    with pytest.raises(TamperedRecord):
        sealer.open(1, b2)  # the primitive itself refuses the moved body


def test_a_flipped_bit_is_refused(tmp_path: Path, store: Store, sealer: Sealer) -> None:
    store.write([NewRecord("reject", b"payload")], None)
    conn = sqlite3.connect(tmp_path / DB_FILE)
    (body,) = conn.execute("SELECT body FROM outbox").fetchone()
    flipped = body[:-1] + bytes([body[-1] ^ 1])
    conn.execute("UPDATE outbox SET body = ?", (flipped,))
    conn.commit()
    conn.close()
    reader = OutboxReader(tmp_path, sealer)
    (row,) = reader.unsent(0, 10)
    assert row.tampered
    assert row.payload == b""
    reader.close()
    with pytest.raises(TamperedRecord, match="does not authenticate"):
        sealer.open(1, flipped)


def test_wrong_key_cannot_read(tmp_path: Path, store: Store) -> None:
    store.write([NewRecord("reject", b"z")], None)
    reader = OutboxReader(tmp_path, Sealer(os.urandom(32)))
    assert [r.tampered for r in reader.unsent(0, 10)] == [True]
    reader.close()


def test_rotated_data_key_keeps_old_rows_readable(tmp_path: Path) -> None:
    k1, k2 = os.urandom(32), os.urandom(32)
    old = Store(tmp_path, Sealer({1: k1}))
    old.write([NewRecord("reject", b"old")], None)
    old.close()
    rotated = Sealer({1: k1, 2: k2})
    new = Store(tmp_path, rotated)
    new.write([NewRecord("reject", b"new")], None)
    new.close()
    reader = OutboxReader(tmp_path, rotated)
    assert [r.payload for r in reader.unsent(0, 10)] == [b"old", b"new"]
    reader.close()
    without_old = OutboxReader(tmp_path, Sealer({2: k2}))
    assert [r.tampered for r in without_old.unsent(0, 10)] == [True, False]
    without_old.close()
    with pytest.raises(TamperedRecord, match="data key 1"):
        Sealer({2: k2}).open(1, Sealer({1: k1}).seal(1, b"old"))


def test_a_store_is_created_and_opened_without_numpy(tmp_path: Path) -> None:
    """sqlite-utils (and the numpy it pulls in) cost ~14 MB RSS for the process's life."""
    probe = (
        "import sys; from pathlib import Path; from agent.store import Sealer, Store; "
        f"Store(Path({str(tmp_path)!r}), Sealer(bytes(32))).close(); "  # a new store: migrated
        f"Store(Path({str(tmp_path)!r}), Sealer(bytes(32))).close(); "  # and opened again
        "print(sorted(m for m in ('sqlite_utils', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


#: The schema of a new store as sqlite-utils 4.2 created it before the migrations became plain
#: SQL: stores made before and after must not differ.
SCHEMA: Final = [
    (
        "outbox",
        'CREATE TABLE "outbox" (\n   "rid" INTEGER PRIMARY KEY,\n   "topic" TEXT NOT NULL,\n'
        '   "seq" INTEGER,\n   "body" BLOB NOT NULL,\n   "created" REAL NOT NULL)',
    ),
    (
        "codes",
        "CREATE TABLE codes (mac BLOB PRIMARY KEY, last_op TEXT NOT NULL, count INTEGER NOT NULL,"
        " last_seq INTEGER NOT NULL, updated REAL NOT NULL) WITHOUT ROWID",
    ),
    ("meta", 'CREATE TABLE "meta" (\n   "key" TEXT PRIMARY KEY,\n   "value" TEXT\n)'),
    ("sqlite_autoindex_meta_1", None),
    (
        "named",
        'CREATE TABLE "named" (\n   "name" TEXT PRIMARY KEY,\n   "version" INTEGER NOT NULL,\n'
        '   "body" BLOB NOT NULL,\n   "updated" REAL NOT NULL\n)',
    ),
    ("sqlite_autoindex_named_1", None),
    (
        "acked",
        "CREATE TABLE acked (n INTEGER PRIMARY KEY, lo INTEGER NOT NULL, hi INTEGER NOT NULL,"
        " at REAL NOT NULL)",
    ),
]
#: What version 4 adds (the central ledger's acknowledgements).
SCHEMA_V4: Final = [
    (
        "published",
        "CREATE TABLE published (n INTEGER PRIMARY KEY, lo INTEGER NOT NULL,"
        " hi INTEGER NOT NULL, at REAL NOT NULL)",
    ),
]


def test_a_new_store_has_the_schema_sqlite_utils_made(tmp_path: Path, sealer: Sealer) -> None:
    store = Store(tmp_path, sealer)
    try:
        rows = store.conn.execute("SELECT name, sql FROM sqlite_master").fetchall()
        assert rows == SCHEMA + SCHEMA_V4
        assert store.conn.execute("PRAGMA user_version").fetchone()[0] == 4
    finally:
        store.close()
