"""The encrypted SQLite outbox: the one place accepted and refused scans live until sent.

One writer (the daemon's pipeline thread) owns a `Store`; readers (the uplink) open their own
`OutboxReader` connection, which WAL lets run beside the writer without "database is locked".

`synchronous=FULL` in WAL mode: every commit is fsynced before `write()` returns, so a scan
confirmed to the worker survives a power cut. NORMAL would be ~10x faster per commit but can
lose the last transactions on power loss; group commit (many scans per transaction) recovers
most of that speed for bursts.
"""

from __future__ import annotations

import hmac
import logging
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from agent.records.envelope import ZERO_HASH, ChainHead, signed_hash
from agent.store import acks, recovery
from agent.store.checkpoint import Checkpointer
from agent.store.hwm import BLOCK, HighWaterMark
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
    """A code's custody state after an event (`mac` is the keyed hash of the code).

    The rules decide the state (`agent.rules.custody`); the store records the last one given
    per code in a batch, and forgets a code whose count drops to zero (an undone first scan).
    """

    mac: bytes
    op: str
    seq: int
    count: int = 1


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


def _last_rid(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COALESCE(MAX(rid), 0) FROM outbox").fetchone()[0])


def _body_bytes(conn: sqlite3.Connection, lo: int, hi: int) -> int:
    """Sealed bytes stored in rows `lo`..`hi`: what they count against `max_bytes`."""
    return int(
        conn.execute(
            "SELECT COALESCE(SUM(length(body)), 0) FROM outbox WHERE rid BETWEEN ? AND ?", (lo, hi)
        ).fetchone()[0]
    )


def unsent_rows(
    conn: sqlite3.Connection,
    done: acks.AckRuns,
    after: int,
    upto: int,
    *,
    limit: int,
    columns: str,
    skip: acks.AckRuns | None = None,
) -> list[tuple[Any, ...]]:
    """Up to `limit` rows with `after` < rid <= `upto` that are not done (nor in `skip`), in rid
    order.

    Unsent rows are never deleted, so each gap between done runs is one rowid range scan.
    """
    out: list[tuple[Any, ...]] = []
    gaps = done.gaps(after, upto)
    if skip is not None:
        gaps = (g for lo, hi in gaps for g in skip.gaps(lo - 1, hi))
    for lo, hi in gaps:
        out += conn.execute(
            f"SELECT {columns} FROM outbox WHERE rid BETWEEN ? AND ? ORDER BY rid LIMIT ?",  # noqa: S608 - callers pass column names
            (lo, hi, limit - len(out)),
        ).fetchall()
        if len(out) >= limit:
            break
    return out


def held_events(
    conn: sqlite3.Connection, done: acks.AckRuns, first_seq: int, last_seq: int, limit: int
) -> list[int]:
    """Up to `limit` row ids, ascending, of the events numbered `first_seq`..`last_seq` that
    are not done. Events are numbered in row order, so the walk over the rows not done stops
    at the first event past `last_seq`."""
    out: list[int] = []
    last = _last_rid(conn)
    for lo, hi in done.gaps(_first_event_from(conn, first_seq, last) - 1, last):
        for rid, seq in conn.execute(
            "SELECT rid, seq FROM outbox WHERE rid BETWEEN ? AND ? AND topic = 'event'"
            " ORDER BY rid",
            (lo, hi),
        ):
            if seq > last_seq:
                return out
            if seq >= first_seq:
                out.append(rid)
                if len(out) >= limit:
                    return out
    return out


def _first_event_from(conn: sqlite3.Connection, seq: int, last_rid: int) -> int:
    """The lowest row id at or after which every event is numbered `seq` or more (bisection:
    events are numbered in row order; other rows and pruned gaps are stepped over)."""
    lo, hi = 1, last_rid + 1
    while lo < hi:
        mid = (lo + hi) // 2
        row = conn.execute(
            "SELECT rid, seq FROM outbox WHERE rid >= ? AND topic = 'event' ORDER BY rid LIMIT 1",
            (mid,),
        ).fetchone()
        if row is None or row[1] >= seq:
            hi = mid
        else:
            lo = row[0] + 1
    return lo


_THROUGH_KEY: Final = "central_through"


def central_through(conn: sqlite3.Connection) -> int:
    """The highest `through` central acknowledged (0 before the first)."""
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (_THROUGH_KEY,)).fetchone()
    value = str(row[0]) if row else ""
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 16 else 0


def named_versions(conn: sqlite3.Connection, prefix: str) -> dict[str, int]:
    """The version of every named blob whose name starts with `prefix` (versions are clear)."""
    rows = conn.execute(
        "SELECT name, version FROM named WHERE substr(name, 1, ?) = ?", (len(prefix), prefix)
    ).fetchall()
    return {str(name): int(version) for name, version in rows}


def unsent_depth(conn: sqlite3.Connection, done: acks.AckRuns) -> Depth:
    """Unsent count and the creation time of the oldest unsent row (the lowest rid)."""
    count, oldest = 0, None
    for lo, hi in done.gaps(0, _last_rid(conn)):
        n, first = conn.execute(
            "SELECT COUNT(*), MIN(created) FROM outbox WHERE rid BETWEEN ? AND ?", (lo, hi)
        ).fetchone()
        count += n
        oldest = first if oldest is None else oldest
    return Depth(count, oldest)


def unpublished(conn: sqlite3.Connection) -> int:
    """Rows neither done nor taken by the broker: what an uplink still has to publish.
    Rows are never deleted while unsent, so each stretch is counted from its row ids."""
    done, published = acks.load(conn), acks.load(conn, acks.PUBLISHED)
    return sum(
        b - a + 1 for lo, hi in done.gaps(0, _last_rid(conn)) for a, b in published.gaps(lo - 1, hi)
    )


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
        background_checkpoint: bool = False,
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
            self._last_rid = _last_rid(self.conn)
            self.head = self._derive_head()
            self.done = acks.load(self.conn)
            self.published = acks.load(self.conn, acks.PUBLISHED)
            self.central_through = central_through(self.conn)
            self.unsent_bytes = sum(
                _body_bytes(self.conn, lo, hi) for lo, hi in self.done.gaps(0, self._last_rid)
            )
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {exc}") from exc
        # The daemon checkpoints in its pauses (checkpoint.py); tools and tests let SQLite do it.
        self._checkpointer = Checkpointer(self.path) if background_checkpoint else None

    @property
    def pause_checkpoints(self) -> int:
        """WAL checkpoints run in the writer's pauses so far (0 without background checkpoints)."""
        return self._checkpointer.runs if self._checkpointer is not None else 0

    def _derive_head(self) -> ChainHead:
        """The chain head from the newest event row, or above the high-water mark.

        Numbering resumes above the mark — with a gap, an alert, and a chain restarting from
        zero — whenever the numbers after the database's newest event may already have been
        used for other content: a new or quarantined store, or an older copy of the database
        (its newest event is below the last number committed, or far below the mark).
        """
        hwm = self.hwm
        self.alerts += hwm.problems
        row = self.conn.execute(
            "SELECT rid, seq, body FROM outbox WHERE topic = 'event' ORDER BY rid DESC LIMIT 1"
        ).fetchone()
        above = max(hwm.value, hwm.last or 0)
        if row is None:
            if above:
                self.alerts.append(
                    f"new store after seq {above}: numbering resumes above the high-water mark"
                )
            return ChainHead(above, ZERO_HASH)
        rid, seq, body = row
        behind_last = hwm.last is not None and hwm.last > seq
        behind_mark = hwm.last is None and hwm.value > seq + 2 * BLOCK
        if behind_last or behind_mark:
            self.alerts.append(
                f"the database ends at seq {seq} but seq {hwm.last or hwm.value} was already"
                f" handed out (an older copy?): numbering resumes above {above}, the chain"
                " restarts, and the ledger will see the gap"
            )
            return ChainHead(above, ZERO_HASH)
        if not hwm.readable:
            self.alerts.append(
                f"{hwm.path} was unreadable: numbering continues after seq {seq}, checked"
                " against the last committed number; the mark is written anew"
            )
        try:
            return ChainHead(seq, signed_hash(self.sealer.open(rid, body)))
        except TamperedRecord as exc:
            # Keep scanning: numbering continues, the chain restarts from zero and says so.
            self.alerts.append(f"chain head unreadable ({exc}); the chain restarts after seq {seq}")
            return ChainHead(seq, ZERO_HASH)

    def newest_created(self) -> float | None:
        """When the newest stored record was stored (wall clock then), if there is one."""
        row = self.conn.execute("SELECT MAX(created) FROM outbox").fetchone()
        return float(row[0]) if row and row[0] is not None else None

    def mac(self, code: str) -> bytes:
        """Keyed hash of a code: the only form in which codes are looked up at rest."""
        return hmac.digest(self._index_key, code.encode("utf-8"), "sha256")[:16]

    def named(self, name: str) -> NamedBlob | None:
        """A named blob (master data set, context), decrypted; None (with an alert) when it
        fails authentication."""
        row = self.conn.execute(
            "SELECT version, body FROM named WHERE name = ?", (name,)
        ).fetchone()
        return None if row is None else self._open_named(name, row[0], row[1])

    def named_like(self, prefix: str) -> list[NamedBlob]:
        """Every named blob whose name starts with `prefix` that authenticates (the others are
        left out with an alert: a damaged set must not stop the agent from starting)."""
        rows = self.conn.execute(
            "SELECT name, version, body FROM named WHERE substr(name, 1, ?) = ? ORDER BY name",
            (len(prefix), prefix),
        ).fetchall()
        return [blob for n, v, b in rows if (blob := self._open_named(n, v, b)) is not None]

    def _open_named(self, name: str, version: int, body: bytes) -> NamedBlob | None:
        try:
            return NamedBlob(name, version, self.sealer.open_named(name, body))
        except TamperedRecord as exc:
            self.alerts.append(f"stored {name!r} is unreadable ({exc}); set aside")
            return None

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
        named: Sequence[NamedBlob] = (),
        quarantine: Sequence[int] = (),
        published: Sequence[int] = (),
        confirmed_through: int | None = None,
    ) -> list[int]:
        """Append records, move the chain head, record code state and mark acknowledged rows,
        all in one transaction; returns the row ids assigned, in the order of `records`.

        `acked` rows are done; `published` rows were taken by the broker and wait for central's
        acknowledgement; `confirmed_through` (central's `through`) makes every event with a seq
        up to it done.

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
                bodies = self.sealer.seal_rows(rid + 1, [r.payload for r in records])
                rids = list(range(rid + 1, rid + 1 + len(bodies)))
                rid += len(bodies)
                added = sum(map(len, bodies))
                self.conn.executemany(
                    "INSERT INTO outbox (rid, topic, seq, body, created) VALUES (?, ?, ?, ?, ?)",
                    [
                        (n, rec.topic, rec.seq, body, now)
                        for n, rec, body in zip(rids, records, bodies, strict=True)
                    ],
                )
                if marks:
                    # The last state given per code wins; in key order, neighbouring upserts
                    # share B-tree pages.
                    final = {m.mac: m for m in marks}
                    self.conn.executemany(
                        "INSERT INTO codes (mac, last_op, count, last_seq, updated)"
                        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (mac) DO UPDATE SET"
                        " last_op = excluded.last_op, count = excluded.count,"
                        " last_seq = excluded.last_seq, updated = excluded.updated",
                        [
                            (mac, m.op, m.count, m.seq, now)
                            for mac, m in sorted(final.items())
                            if m.count > 0
                        ],
                    )
                    self.conn.executemany(
                        "DELETE FROM codes WHERE mac = ?",
                        [(mac,) for mac, m in final.items() if m.count <= 0],
                    )
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
                    if self.done.find(bad) is None:
                        self.conn.execute(
                            "UPDATE outbox SET topic = 'quarantined' WHERE rid = ?", (bad,)
                        )
                confirmed = self._confirm(confirmed_through)
                runs = self.done.new_runs([*acked, *quarantine, *confirmed], now)
                released = sum(_body_bytes(self.conn, run.lo, run.hi) for run in runs)
                last_n = acks.record(self.conn, runs)
                pub_runs = self.published.new_runs(
                    [r for r in published if self.done.find(r) is None], now
                )
                pub_n = acks.record(self.conn, pub_runs, acks.PUBLISHED)
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
        for run in runs:
            self.done.add(run)
        self.done.last_n = max(self.done.last_n, last_n)
        for run in pub_runs:
            self.published.add(run)
        self.published.last_n = max(self.published.last_n, pub_n)
        if confirmed_through is not None:
            self.central_through = max(self.central_through, confirmed_through)
        self.unsent_bytes += added - released
        if head is not None:
            self.head = head
            self.hwm.committed(head.seq)
        if self._checkpointer is not None:
            self._checkpointer.wrote()
        return rids

    def _confirm(self, through: int | None) -> list[int]:
        """Inside the write's transaction: the rows of the events central now holds (seq up to
        `through`) that are not done yet, and the new `through` noted."""
        if through is None or through <= self.central_through:
            return []
        rids = held_events(self.conn, self.done, 1, through, 2**62)
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (_THROUGH_KEY, str(through)),
        )
        return rids

    def prune(self, now: float | None = None) -> int:
        """Delete sent records past audit retention, then the oldest sent ones while the store
        is over its byte bound. Unsent records and the newest event (the chain head) stay.
        Returns how many rows went."""
        now = time.time() if now is None else now
        cutoff = now - self.limits.retention_s
        (keep,) = self.conn.execute(
            "SELECT COALESCE(MAX(rid), 0) FROM outbox WHERE topic = 'event'"
        ).fetchone()
        delete = "DELETE FROM outbox WHERE rid BETWEEN ? AND ? AND rid != ?"
        removed = 0
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                for run in self.done:
                    if run.at < cutoff:
                        removed += self.conn.execute(delete, (run.lo, run.hi, keep)).rowcount
                acks.compact(self.conn, self.done, cutoff)
                # What central confirmed no longer waits for it: the published runs below the
                # first row not yet done (one above a gap goes once the gap closes; readers
                # skip whatever `done` covers meanwhile).
                first_open = next(self.done.gaps(0, self._last_rid), (self._last_rid + 1, 0))[0]
                self.conn.execute("DELETE FROM published WHERE hi < ?", (first_open,))
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            finally:
                self.done = acks.load(self.conn)
                self.published = acks.load(self.conn, acks.PUBLISHED)
            for run in self.done:  # oldest first, each its own transaction
                if self.used_bytes() <= self.limits.max_bytes:
                    break
                removed += self.conn.execute(delete, (run.lo, run.hi, keep)).rowcount
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
        """Stop background checkpoints and close; SQLite checkpoints as the last connection
        closes, and a WAL left by a crash is replayed by the next open."""
        if self._checkpointer is not None:
            self._checkpointer.close()
        self.hwm.close()
        self.conn.close()


class OutboxReader:
    """A read connection for the uplink: unsent rows in order, and the buffer depth.

    Each call reads in one snapshot: the done runs appended since the last call, then the rows.
    """

    def __init__(self, data_dir: Path, sealer: Sealer) -> None:
        self.conn = _connect(data_dir / DB_FILE)
        self.sealer = sealer
        self.done = acks.AckRuns()
        self.published = acks.AckRuns(acks.PUBLISHED)

    def _snapshot(self) -> None:
        self.conn.execute("BEGIN")
        self.done.refresh(self.conn)
        self.published.refresh(self.conn)

    def _end(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("COMMIT")

    def unsent(self, after_rid: int, limit: int) -> list[OutboxRow]:
        """Up to `limit` unsent rows with rid > `after_rid`, in rid order, decrypted."""
        return self.unsent_between(after_rid, 2**63 - 1, limit)

    def _row(self, rid: int, topic: Topic, body: bytes) -> OutboxRow:
        # One altered or undecryptable row must not stop every row behind it from leaving.
        try:
            return OutboxRow(rid, topic, self.sealer.open(rid, body))
        except TamperedRecord as exc:
            log.error("store: %s; it will be quarantined, not sent", exc)
            return OutboxRow(rid, topic, b"", tampered=True)

    def unsent_between(
        self, after_rid: int, upto_rid: int, limit: int, *, unpublished: bool = False
    ) -> list[OutboxRow]:
        """Up to `limit` unsent rows with `after_rid` < rid <= `upto_rid`, in rid order, decrypted
        (`unpublished`: leaving out those the broker took that wait for central's ack).

        The uplink's backlog lane: rows that were already stored when the connection came up.
        """
        self._snapshot()
        try:
            upto = min(upto_rid, _last_rid(self.conn))
            rows = unsent_rows(
                self.conn,
                self.done,
                after_rid,
                upto,
                limit=limit,
                columns="rid, topic, body",
                skip=self.published if unpublished else None,
            )
        finally:
            self._end()
        return [self._row(rid, topic, body) for rid, topic, body in rows]

    def last_rid(self) -> int:
        """The highest row id stored (0 when empty): where the backlog ends and live rows begin."""
        return _last_rid(self.conn)

    def confirmed(self) -> acks.AckRuns:
        """The done runs, as of a fresh snapshot."""
        self._snapshot()
        self._end()
        return self.done

    def central_through(self) -> int:
        """The highest `through` central acknowledged, as stored (0 before the first)."""
        return central_through(self.conn)

    def awaiting_central(self) -> list[acks.Run]:
        """Runs of rows the broker took that central has not acknowledged yet (with when)."""
        self._snapshot()
        try:
            return [
                acks.Run(lo, hi, run.at)
                for run in self.published
                for lo, hi in self.done.gaps(run.lo - 1, run.hi)
            ]
        finally:
            self._end()

    def event_rids(self, first_seq: int, last_seq: int, limit: int) -> list[int]:
        """The rows of the events numbered `first_seq`..`last_seq` still held (not done)."""
        self._snapshot()
        try:
            return held_events(self.conn, self.done, first_seq, last_seq, limit)
        finally:
            self._end()

    def unsent_depth(self) -> Depth:
        """Unsent count and the creation time of the oldest unsent row: one range count per gap
        between done runs, so it costs the backlog, not the retained history."""
        self._snapshot()
        try:
            return unsent_depth(self.conn, self.done)
        finally:
            self._end()

    def close(self) -> None:
        """Release the connection."""
        self.conn.close()
