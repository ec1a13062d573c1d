"""The encrypted SQLite outbox: the one place accepted and refused scans live until sent.

One writer (the daemon's pipeline thread) owns a `Store`; readers (the uplink) open their own
`OutboxReader` connection, which WAL lets run beside the writer without "database is locked".

`synchronous=FULL` in WAL mode: every commit is fsynced before `write()` returns, so a scan
confirmed to the worker survives a power cut. NORMAL would be ~10x faster per commit but can
lose the last transactions on power loss; group commit (many scans per transaction) recovers
most of that speed for bursts.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from agent.events import ZERO_HASH, ChainHead, canonical
from agent.store import recovery
from agent.store.hwm import HighWaterMark
from agent.store.schema import migrate, prepare
from agent.store.sealing import Sealer, TamperedRecord

log = logging.getLogger(__name__)

Topic = Literal["event", "reject", "alert", "report", "quarantined"]
DB_FILE: Final = "tracescan.db"
DEFAULT_MAX_BYTES: Final = 512 * 1024 * 1024
DEFAULT_RETENTION_S: Final = 30 * 86400.0
_SEAL_OVERHEAD: Final = 3 + 12 + 16  # header, nonce, tag


class StoreError(Exception):
    """The store could not be opened or written; the scan that needed it is not confirmed."""


class BufferFull(StoreError):
    """Unsent records fill the configured bound: new scans are refused, nothing is dropped."""


@dataclass(frozen=True, slots=True)
class Limits:
    """How much the store may hold."""

    max_bytes: int = DEFAULT_MAX_BYTES  # unsent records never exceed this; sent ones are pruned
    retention_s: float = DEFAULT_RETENTION_S  # audit retention of sent records


@dataclass(frozen=True, slots=True)
class NewRecord:
    """A payload to append; the store assigns its row id."""

    topic: Topic
    payload: bytes
    seq: int | None = None


@dataclass(frozen=True, slots=True)
class CodeMark:
    """Per-code state to record with an accepted event (`mac` is the keyed hash of the code)."""

    mac: bytes
    op: str
    seq: int


@dataclass(frozen=True, slots=True)
class NamedBlob:
    """A named, versioned blob kept sealed in the store."""

    name: str
    version: int
    data: bytes


@dataclass(frozen=True, slots=True)
class CodeState:
    """What the store knows about one code, found by its keyed hash."""

    last_op: str
    count: int
    last_seq: int
    updated: float


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """A stored, decrypted record on its way to the broker."""

    rid: int
    topic: Topic
    payload: bytes
    tampered: bool = False  # failed authentication: never published, quarantined by the daemon


@dataclass(frozen=True, slots=True)
class Depth:
    """How much is waiting to be sent."""

    unsent: int
    oldest_created: float | None


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=True, timeout=10.0)
    conn.execute("PRAGMA busy_timeout = 10000")
    return conn


def signed_hash(payload: bytes) -> str:
    """SHA-256 of an event's signed bytes (the payload without `sig`): the next `prev`."""
    obj = json.loads(payload)
    obj.pop("sig", None)
    return hashlib.sha256(canonical(obj)).hexdigest()


class Store:
    """Single-writer access to the outbox, per-code state, sequence and chain head.

    Opening runs `PRAGMA quick_check`; a damaged database is quarantined and a fresh one
    started (`alerts` says so, for the daemon to raise). Numbering then resumes above the
    high-water mark kept outside the database, so no `seq` is ever reused.
    """

    def __init__(
        self,
        data_dir: Path,
        sealer: Sealer,
        *,
        index_key: bytes = b"",
        limits: Limits | None = None,
    ) -> None:
        self.path = data_dir / DB_FILE
        self.sealer = sealer
        self.limits = limits or Limits()
        self._index_key = index_key
        self.alerts: list[str] = []
        self.rejects_dropped = 0
        problem = recovery.check(self.path)
        if problem is not None:
            moved = recovery.quarantine(self.path)
            self.alerts.append(
                f"store failed its integrity check ({problem}); moved aside as "
                + ", ".join(p.name for p in moved)
            )
        self.hwm = HighWaterMark(data_dir)
        self.hwm.discard_tmp()
        try:
            self.conn = _connect(self.path)
            prepare(self.conn)
            migrate(self.conn)
            row = self.conn.execute("SELECT COALESCE(MAX(rid), 0) FROM outbox").fetchone()
            self._last_rid: int = row[0]
            self.head = self._derive_head()
            (self.unsent_bytes,) = self.conn.execute(
                "SELECT COALESCE(SUM(length(body)), 0) FROM outbox WHERE sent IS NULL"
            ).fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {exc}") from exc

    def _derive_head(self) -> ChainHead:
        """The chain head from the newest event row, or the high-water mark for a new store."""
        row = self.conn.execute(
            "SELECT rid, seq, body FROM outbox WHERE topic = 'event' ORDER BY rid DESC LIMIT 1"
        ).fetchone()
        if row is None:
            if self.hwm.value:
                self.alerts.append(
                    f"new store after seq {self.hwm.value}: numbering resumes above the high-water mark"
                )
            return ChainHead(self.hwm.value, ZERO_HASH)
        rid, seq, body = row
        try:
            return ChainHead(seq, signed_hash(self.sealer.open(rid, body)))
        except TamperedRecord as exc:
            # Keep scanning: numbering continues, the chain restarts from zero and says so.
            self.alerts.append(f"chain head unreadable ({exc}); the chain restarts after seq {seq}")
            return ChainHead(seq, ZERO_HASH)

    def mac(self, code: str) -> bytes:
        """Keyed hash of a code: the only form in which codes are looked up at rest."""
        return hmac.new(self._index_key, code.encode("utf-8"), hashlib.sha256).digest()[:16]

    def named(self, name: str) -> NamedBlob | None:
        """A named blob (master data set, context), decrypted."""
        row = self.conn.execute(
            "SELECT version, body FROM named WHERE name = ?", (name,)
        ).fetchone()
        if row is None:
            return None
        return NamedBlob(name, row[0], self.sealer.open_named(name, row[1]))

    def named_like(self, prefix: str) -> list[NamedBlob]:
        """Every named blob whose name starts with `prefix`."""
        rows = self.conn.execute(
            "SELECT name, version, body FROM named WHERE substr(name, 1, ?) = ? ORDER BY name",
            (len(prefix), prefix),
        ).fetchall()
        return [NamedBlob(n, v, self.sealer.open_named(n, b)) for n, v, b in rows]

    def events_since(self, created: float) -> list[bytes]:
        """Decrypted event payloads stored since `created` (for rebuilding derived state)."""
        rows = self.conn.execute(
            "SELECT rid, body FROM outbox WHERE topic = 'event' AND created >= ? ORDER BY rid",
            (created,),
        ).fetchall()
        out = []
        for rid, body in rows:
            try:
                out.append(self.sealer.open(rid, body))
            except TamperedRecord as exc:
                log.error("store: %s; left out", exc)
        return out

    def code_state(self, mac: bytes) -> CodeState | None:
        """Recorded state of a code, by its keyed hash."""
        row = self.conn.execute(
            "SELECT last_op, count, last_seq, updated FROM codes WHERE mac = ?", (mac,)
        ).fetchone()
        return CodeState(*row) if row else None

    def write(
        self,
        records: Sequence[NewRecord],
        head: ChainHead | None,
        acked: Sequence[int] = (),
        *,
        marks: Sequence[CodeMark] = (),
        unmarks: Sequence[bytes] = (),
        named: Sequence[NamedBlob] = (),
        quarantine: Sequence[int] = (),
    ) -> list[int]:
        """Append records, move the chain head, record code state and mark acknowledged rows,
        all in one transaction; returns the row ids assigned, in the order of `records`.

        Raises `BufferFull` (before writing anything) when accepted events would push unsent
        data past `limits.max_bytes`; rejects over the bound are dropped and counted instead.
        Nothing is visible, or may be confirmed, unless this returns.
        """
        incoming = sum(len(r.payload) + _SEAL_OVERHEAD for r in records)
        if incoming and self.unsent_bytes + incoming > self.limits.max_bytes:
            if any(r.topic == "event" for r in records):
                raise BufferFull(
                    f"unsent records hold {self.unsent_bytes} bytes of {self.limits.max_bytes}"
                )
            self.rejects_dropped += len(records)
            records = ()
        now = time.time()
        rid = self._last_rid
        rids: list[int] = []
        added = released = 0
        try:
            if head is not None:
                self.hwm.reserve(head.seq)
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                for rec in records:
                    rid += 1
                    body = self.sealer.seal(rid, rec.payload)
                    added += len(body)
                    self.conn.execute(
                        "INSERT INTO outbox (rid, topic, seq, body, created) VALUES (?, ?, ?, ?, ?)",
                        (rid, rec.topic, rec.seq, body, now),
                    )
                    rids.append(rid)
                for mark in marks:
                    self.conn.execute(
                        "INSERT INTO codes (mac, last_op, count, last_seq, updated)"
                        " VALUES (?, ?, 1, ?, ?) ON CONFLICT (mac) DO UPDATE SET"
                        " count = CASE WHEN last_op = excluded.last_op OR (last_op IN"
                        " ('dispense', 'sale') AND excluded.last_op IN ('dispense', 'sale'))"
                        " THEN count + 1 ELSE 1 END, last_op = excluded.last_op,"
                        " last_seq = excluded.last_seq, updated = excluded.updated",
                        (mark.mac, mark.op, mark.seq, now),
                    )
                for mac in unmarks:  # an undone scan: its code's count steps back
                    self.conn.execute(
                        "UPDATE codes SET count = count - 1, updated = ? WHERE mac = ?", (now, mac)
                    )
                    self.conn.execute("DELETE FROM codes WHERE mac = ? AND count <= 0", (mac,))
                for blob in named:
                    self.conn.execute(
                        "INSERT OR REPLACE INTO named (name, version, body, updated)"
                        " VALUES (?, ?, ?, ?)",
                        (
                            blob.name,
                            blob.version,
                            self.sealer.seal_named(blob.name, blob.data),
                            now,
                        ),
                    )
                for bad in quarantine:  # kept for forensics, out of the unsent set
                    self.conn.execute(
                        "UPDATE outbox SET sent = ?, topic = 'quarantined' WHERE rid = ?"
                        " AND sent IS NULL",
                        (now, bad),
                    )
                for i in range(0, len(acked), 500):
                    chunk = list(acked[i : i + 500])
                    marks_sql = ",".join("?" * len(chunk))
                    sql = (
                        f"UPDATE outbox SET sent = ? WHERE rid IN ({marks_sql})"  # noqa: S608 - placeholders only
                        " AND sent IS NULL RETURNING length(body)"
                    )
                    released += sum(n for (n,) in self.conn.execute(sql, (now, *chunk)).fetchall())
                self.conn.execute("COMMIT")
            except BaseException:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise StoreError(str(exc)) from exc
        except OSError as exc:  # the high-water mark could not be written (disk full, ...)
            raise StoreError(f"{self.hwm.path}: {exc.strerror or exc}") from exc
        self._last_rid = rid
        self.unsent_bytes += added - released
        if head is not None:
            self.head = head
        return rids

    def prune(self, now: float | None = None) -> int:
        """Delete sent records past audit retention, then the oldest sent ones while the store
        is over its byte bound. Unsent records and the newest event (the chain head) stay.
        Returns how many rows went."""
        now = time.time() if now is None else now
        keep = "(SELECT COALESCE(MAX(rid), 0) FROM outbox WHERE topic = 'event')"
        removed = 0
        try:
            cur = self.conn.execute(
                f"DELETE FROM outbox WHERE sent IS NOT NULL AND sent < ? AND rid < {keep}",  # noqa: S608 - constant
                (now - self.limits.retention_s,),
            )
            removed += cur.rowcount
            while self.used_bytes() > self.limits.max_bytes:
                cur = self.conn.execute(
                    "DELETE FROM outbox WHERE rid IN (SELECT rid FROM outbox"  # noqa: S608 - constant
                    f" WHERE sent IS NOT NULL AND rid < {keep} ORDER BY rid LIMIT 1000)"
                )
                if cur.rowcount <= 0:
                    break
                removed += cur.rowcount
        except sqlite3.Error as exc:
            raise StoreError(str(exc)) from exc
        return removed

    def used_bytes(self) -> int:
        """Bytes of the database file in use (free pages excluded)."""
        pages, free, size = (
            self.conn.execute(f"PRAGMA {p}").fetchone()[0]
            for p in ("page_count", "freelist_count", "page_size")
        )
        return int((pages - free) * size)

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
        return [self._row(rid, topic, body) for rid, topic, body in rows]

    def _row(self, rid: int, topic: Topic, body: bytes) -> OutboxRow:
        # One altered or undecryptable row must not stop every row behind it from leaving.
        try:
            return OutboxRow(rid, topic, self.sealer.open(rid, body))
        except TamperedRecord as exc:
            log.error("store: %s; it will be quarantined, not sent", exc)
            return OutboxRow(rid, topic, b"", tampered=True)

    def depth(self) -> Depth:
        """Unsent count and the creation time of the oldest unsent row."""
        count, oldest = self.conn.execute(
            "SELECT COUNT(*), MIN(created) FROM outbox WHERE sent IS NULL"
        ).fetchone()
        return Depth(count, oldest)

    def unsent_between(self, after_rid: int, upto_rid: int, limit: int) -> list[OutboxRow]:
        """Up to `limit` unsent rows with `after_rid` < rid <= `upto_rid`, in rid order, decrypted.

        The uplink's backlog lane: rows that were already stored when the connection came up.
        """
        rows = self.conn.execute(
            "SELECT rid, topic, body FROM outbox WHERE sent IS NULL AND rid > ? AND rid <= ?"
            " ORDER BY rid LIMIT ?",
            (after_rid, upto_rid, limit),
        ).fetchall()
        return [self._row(rid, topic, body) for rid, topic, body in rows]

    def last_rid(self) -> int:
        """The highest row id stored (0 when empty): where the backlog ends and live rows begin."""
        row = self.conn.execute("SELECT COALESCE(MAX(rid), 0) FROM outbox").fetchone()
        return int(row[0])

    def unsent_depth(self) -> Depth:
        """Like `depth`, but from the unsent index alone: cheap even with a million rows waiting.

        Rows are created in rid order, so the oldest unsent row is the one with the lowest rid.
        """
        (count,) = self.conn.execute("SELECT COUNT(*) FROM outbox WHERE sent IS NULL").fetchone()
        oldest = self.conn.execute(
            "SELECT created FROM outbox WHERE sent IS NULL ORDER BY rid LIMIT 1"
        ).fetchone()
        return Depth(count, oldest[0] if oldest else None)

    def close(self) -> None:
        """Release the connection."""
        self.conn.close()
