"""The encrypted outbox on real SQLite files."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from agent.events import ChainHead
from agent.store import DB_FILE, NewRecord, OutboxReader, Sealer, Store, TamperedRecord


@pytest.fixture
def sealer() -> Sealer:
    return Sealer(os.urandom(32))


def test_rows_round_trip_in_order_and_leave_when_marked_sent(
    tmp_path: Path, sealer: Sealer
) -> None:
    store = Store(tmp_path, sealer)
    rids = store.write(
        [NewRecord("event", b"one", 1), NewRecord("reject", b"two")], ChainHead(1, "a" * 64)
    )
    reader = OutboxReader(tmp_path, sealer)
    rows = reader.unsent(0, 10)
    assert [(r.rid, r.topic, r.payload) for r in rows] == [
        (rids[0], "event", b"one"),
        (rids[1], "reject", b"two"),
    ]
    store.write([], None, acked=[rids[0]])
    assert [r.rid for r in reader.unsent(0, 10)] == [rids[1]]
    assert reader.depth().unsent == 1
    reader.close()
    store.close()


def test_head_and_row_ids_survive_reopen(tmp_path: Path, sealer: Sealer) -> None:
    store = Store(tmp_path, sealer)
    store.write([NewRecord("event", b"x", 1)], ChainHead(1, "b" * 64))
    store.close()
    again = Store(tmp_path, sealer)
    assert again.head == ChainHead(1, "b" * 64)
    assert again.write([NewRecord("event", b"y", 2)], ChainHead(2, "c" * 64)) == [2]
    again.close()


def test_no_plaintext_in_any_file(tmp_path: Path, sealer: Sealer) -> None:
    store = Store(tmp_path, sealer)
    secret = b"81234560000000011234"
    store.write([NewRecord("event", b'{"code":"' + secret + b'"}', 1)], ChainHead(1, "d" * 64))
    for p in tmp_path.iterdir():
        data = p.read_bytes()
        assert secret not in data, p
        assert secret[7:16] not in data, p
    store.close()


def test_swapped_or_altered_rows_are_refused(tmp_path: Path, sealer: Sealer) -> None:
    store = Store(tmp_path, sealer)
    store.write(
        [NewRecord("event", b"first", 1), NewRecord("event", b"second", 2)], ChainHead(2, "e" * 64)
    )
    store.close()
    conn = sqlite3.connect(tmp_path / DB_FILE)
    (b1,), (b2,) = conn.execute("SELECT body FROM outbox ORDER BY rid").fetchall()
    conn.execute("UPDATE outbox SET body = ? WHERE rid = 1", (b2,))
    conn.execute("UPDATE outbox SET body = ? WHERE rid = 2", (b1,))
    conn.commit()
    conn.close()
    reader = OutboxReader(tmp_path, sealer)
    with pytest.raises(TamperedRecord):
        reader.unsent(0, 10)
    reader.close()


def test_wrong_key_cannot_read(tmp_path: Path, sealer: Sealer) -> None:
    store = Store(tmp_path, sealer)
    store.write([NewRecord("event", b"z", 1)], ChainHead(1, "f" * 64))
    store.close()
    reader = OutboxReader(tmp_path, Sealer(os.urandom(32)))
    with pytest.raises(TamperedRecord):
        reader.unsent(0, 10)
    reader.close()
