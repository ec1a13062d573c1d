"""WAL checkpoints in the daemon store's pauses, batched sealing and batched code state."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.store import DB_FILE, CodeMark, Sealer, Store, TamperedRecord
from agent.store.schema import PAGE_SIZE, WAL_AUTOCHECKPOINT
from tests.store.conftest import make_events


def test_writes_reach_the_database_file_once_the_writer_pauses(
    tmp_path: Path, sealer: Sealer, signing_key: Ed25519PrivateKey
) -> None:
    store = Store(tmp_path, sealer, background_checkpoint=True)
    checkpointer = store._checkpointer
    assert checkpointer is not None
    assert store.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == WAL_AUTOCHECKPOINT
    events, head = make_events(store, signing_key, 40)
    store.write(events, head)  # ~100 WAL frames: far below SQLite's own autocheckpoint
    db = tmp_path / DB_FILE
    deadline = time.monotonic() + 30
    while db.stat().st_size < 40 * PAGE_SIZE and time.monotonic() < deadline:
        time.sleep(0.05)
    assert store.pause_checkpoints >= 1
    # Each sealed event holds a leaf share and an overflow page: all of them were copied.
    assert db.stat().st_size >= 40 * PAGE_SIZE
    store.close()
    assert not checkpointer._thread.is_alive()
    again = Store(tmp_path, sealer)
    assert again.head == head
    again.close()


def test_many_codes_in_one_batch_each_get_their_own_state(
    store: Store, signing_key: Ed25519PrivateKey
) -> None:
    codes = [f"8123456{n:013d}" for n in range(30)]
    events, head = make_events(store, signing_key, 31)
    marks = [CodeMark(store.mac(c), "receive", i + 1) for i, c in enumerate(codes)]
    # The first code again at the end of the batch: its second mark must apply second.
    marks.append(CodeMark(store.mac(codes[0]), "dispense", 31))
    store.write(events, head, marks=marks)
    first = store.code_state(store.mac(codes[0]))
    assert first is not None
    assert (first.last_op, first.count, first.last_seq) == ("dispense", 1, 31)
    for i, code in enumerate(codes[1:], start=2):
        state = store.code_state(store.mac(code))
        assert state is not None
        assert (state.last_op, state.count, state.last_seq) == ("receive", 1, i)


def test_batched_seals_have_their_own_nonces_and_rows() -> None:
    sealer = Sealer(os.urandom(32))
    blobs = sealer.seal_rows(10, [b"same"] * 5)
    assert len({b[3:15] for b in blobs}) == 5
    assert [sealer.open(10 + i, b) for i, b in enumerate(blobs)] == [b"same"] * 5
    with pytest.raises(TamperedRecord):
        sealer.open(11, blobs[0])
    assert sealer.seal_rows(1, []) == []
