"""The encrypted SQLite outbox: the one place accepted and refused scans live until sent.

One writer (the daemon's pipeline thread) owns a `Store`; readers (the uplink) open their own
`OutboxReader` connection, which WAL lets run beside the writer without "database is locked".

`synchronous=FULL` in WAL mode: every commit is fsynced before `write()` returns, so a scan
confirmed to the worker survives a power cut. NORMAL would be ~10x faster per commit but can
lose the last transactions on power loss; group commit (many scans per transaction) recovers
most of that speed for bursts.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from agent.events import ZERO_HASH, ChainHead
from agent.store.sealing import Sealer

Topic = Literal["event", "reject"]
DB_FILE: Final = "tracescan.db"

_MIGRATIONS: Final[tuple[str, ...]] = (
    """
    CREATE TABLE outbox (
        rid     INTEGER PRIMARY KEY,          -- publication order; AES-GCM associated data
        topic   TEXT NOT NULL CHECK (topic IN ('event', 'reject')),
        seq     INTEGER UNIQUE,               -- NULL for rejects
        body    BLOB NOT NULL,                -- nonce || AES-256-GCM(payload)
        created REAL NOT NULL,
        sent    REAL                          -- PUBACK time; NULL while unsent
    );
    CREATE INDEX outbox_unsent ON outbox (rid) WHERE sent IS NULL;
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
)


class StoreError(Exception):
    """The store could not be opened or written; the scan that needed it is not confirmed."""


@dataclass(frozen=True, slots=True)
class NewRecord:
    """A payload to append; the store assigns its row id."""

    topic: Topic
    payload: bytes
    seq: int | None = None


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """A stored, decrypted record on its way to the broker."""

    rid: int
    topic: Topic
    payload: bytes


@dataclass(frozen=True, slots=True)
class Depth:
    """How much is waiting to be sent."""

    unsent: int
    oldest_created: float | None


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=True, timeout=10.0)
    conn.execute("PRAGMA busy_timeout = 10000")
    return conn


class Store:
    """Single-writer access to the outbox and the chain head."""

    def __init__(self, data_dir: Path, sealer: Sealer) -> None:
        self.path = data_dir / DB_FILE
        self.sealer = sealer
        try:
            self.conn = _connect(self.path)
            self.conn.execute("PRAGMA journal_mode = WAL")
            self.conn.execute("PRAGMA synchronous = FULL")
            self._migrate()
            self.head = self._load_head()
            row = self.conn.execute("SELECT COALESCE(MAX(rid), 0) FROM outbox").fetchone()
            self._last_rid: int = row[0]
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {exc}") from exc

    def _migrate(self) -> None:
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        for i, script in enumerate(_MIGRATIONS[version:], start=version + 1):
            self.conn.executescript(
                f"BEGIN IMMEDIATE; {script}; PRAGMA user_version = {i}; COMMIT;"
            )

    def _load_head(self) -> ChainHead:
        rows = dict(
            self.conn.execute("SELECT key, value FROM meta WHERE key IN ('seq', 'head')").fetchall()
        )
        return ChainHead(int(rows.get("seq", 0)), rows.get("head", ZERO_HASH))

    def write(
        self, records: Sequence[NewRecord], head: ChainHead | None, acked: Sequence[int] = ()
    ) -> list[int]:
        """Append records, move the chain head and mark acknowledged rows, in one transaction.

        Returns the row ids assigned. Nothing is visible (or confirmed) unless this returns.
        """
        now = time.time()
        rid = self._last_rid
        rids: list[int] = []
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                for rec in records:
                    rid += 1
                    self.conn.execute(
                        "INSERT INTO outbox (rid, topic, seq, body, created) VALUES (?, ?, ?, ?, ?)",
                        (rid, rec.topic, rec.seq, self.sealer.seal(rid, rec.payload), now),
                    )
                    rids.append(rid)
                if head is not None:
                    self.conn.executemany(
                        "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                        (("seq", str(head.seq)), ("head", head.hash)),
                    )
                if acked:
                    self.conn.executemany(
                        "UPDATE outbox SET sent = ? WHERE rid = ? AND sent IS NULL",
                        ((now, r) for r in acked),
                    )
                self.conn.execute("COMMIT")
            except BaseException:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise StoreError(str(exc)) from exc
        self._last_rid = rid
        if head is not None:
            self.head = head
        return rids

    def close(self) -> None:
        """Checkpoint-free close; WAL is replayed by the next open."""
        self.conn.close()


class OutboxReader:
    """A read connection for the uplink: unsent rows in order, and the buffer depth."""

    def __init__(self, data_dir: Path, sealer: Sealer) -> None:
        self.conn = _connect(data_dir / DB_FILE)
        self.sealer = sealer

    def unsent(self, after_rid: int, limit: int) -> list[OutboxRow]:
        """Up to `limit` unsent rows with rid > `after_rid`, in rid order, decrypted."""
        rows = self.conn.execute(
            "SELECT rid, topic, body FROM outbox WHERE sent IS NULL AND rid > ? ORDER BY rid LIMIT ?",
            (after_rid, limit),
        ).fetchall()
        return [OutboxRow(rid, topic, self.sealer.open(rid, body)) for rid, topic, body in rows]

    def depth(self) -> Depth:
        """Unsent count and the creation time of the oldest unsent row."""
        count, oldest = self.conn.execute(
            "SELECT COUNT(*), MIN(created) FROM outbox WHERE sent IS NULL"
        ).fetchone()
        return Depth(count, oldest)

    def close(self) -> None:
        """Release the connection."""
        self.conn.close()
