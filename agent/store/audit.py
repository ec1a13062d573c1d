"""Reading the whole record back for audit (`tracescan export`), with its own read-only
connection: every stored row in rid order, decrypted, with when it was sent."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from agent.store import acks
from agent.store.outbox import DB_FILE, StoreError
from agent.store.sealing import Sealer, TamperedRecord


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """One decrypted outbox row."""

    rid: int
    topic: str
    seq: int | None
    created: float
    sent: float | None
    payload: bytes


def read_records(
    data_dir: Path, sealer: Sealer, since: float | None = None
) -> Iterator[StoredRecord | str]:
    """Every row in rid order, decrypted; a row that fails authentication yields a problem.

    Raises `StoreError` when the database cannot be read at all.
    """
    try:
        conn = sqlite3.connect(f"file:{data_dir / DB_FILE}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise StoreError(f"{data_dir / DB_FILE}: {exc}") from exc
    try:
        conn.execute("BEGIN")  # one snapshot: rows and when they were sent
        done = acks.load(conn)
        rows = conn.execute(
            "SELECT rid, topic, seq, created, body FROM outbox WHERE created >= ? ORDER BY rid",
            (since or 0.0,),
        )
        for rid, topic, seq, created, body in rows:
            run = done.find(rid)
            sent = run.at if run else None
            try:
                yield StoredRecord(rid, topic, seq, created, sent, sealer.open(rid, body))
            except TamperedRecord as exc:
                yield f"row {rid}: {exc}"
    except sqlite3.Error as exc:
        raise StoreError(f"{data_dir / DB_FILE}: {exc}") from exc
    finally:
        conn.close()
