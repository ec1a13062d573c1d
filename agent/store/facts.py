"""What the store knows for `status`: the facts of each stored record, read once.

The store is the single owner of SQLite: `status` (and the metrics endpoint) read through
`FactsReader`, which keeps its own read-only connection beside the daemon's writer.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from array import array
from dataclasses import dataclass
from pathlib import Path

from agent.store import acks
from agent.store.outbox import (
    DB_FILE,
    StoreError,
    central_through,
    named_versions,
    unsent_rows,
)
from agent.store.sealing import Sealer, TamperedRecord


@dataclass(frozen=True, slots=True)
class RecordFacts:
    """What status needs from one stored record (decrypted by the caller)."""

    topic: str
    created: float
    sent: float | None  # done: the broker's PUBACK, or central's ack where there is a ledger
    op: str | None = None
    reason: str | None = None
    void: bool = False
    published: float | None = None  # the broker took it; central's ack is awaited


@dataclass(frozen=True, slots=True)
class StoreFacts:
    """One snapshot of the store: the records in the window and the unsent backlog."""

    records: list[RecordFacts]
    unsent_events: list[float]  # creation times of unsent events (the deadline's input)
    unsent: int  # unsent records of every topic
    oldest_unsent: float | None
    named_versions: dict[str, int]  # name -> version of the named blobs asked for
    awaiting_central: int = 0  # of the unsent: the broker took them, central's ack is awaited
    central_through: int | None = None  # central's latest acknowledgement (None: none yet)


def payload_facts(topic: str, created: float, sent: float | None, payload: bytes) -> RecordFacts:
    """The status-relevant facts of a decrypted record."""
    try:
        obj = json.loads(payload)
    except ValueError:
        return RecordFacts(topic, created, sent)
    fields = obj.get("fields")
    void = isinstance(fields, dict) and "void_of" in fields
    return RecordFacts(topic, created, sent, obj.get("op"), obj.get("reason"), void)


class FactsReader:
    """Reads a store for `status` with its own read-only connection, decrypting each record once.

    The daemon keeps one for its life, so a status call or a metrics scrape decrypts only the
    records stored since the previous call (a busy site stores tens of thousands a day, and
    decrypting and parsing all of them took ~0.35 s a call). What a record says (operation,
    refusal reason, undo) never changes and is kept in compact arrays, ~20 bytes a record;
    what can change is read fresh on every call in one snapshot: the topic (a tampered row
    becomes `quarantined`), whether the row still exists (pruning), and when it was sent.
    Thread-safe: the local API and the metrics endpoint share one.
    """

    def __init__(self, data_dir: Path, sealer: Sealer) -> None:
        self.data_dir = data_dir
        self.sealer = sealer
        self._lock = threading.Lock()
        self._forget_all()

    def _forget_all(self) -> None:
        self._rids = array("q")  # ascending
        self._created = array("d")
        self._kind = array("H")  # index into `_kinds`
        self._kinds: list[tuple[str | None, str | None, bool]] = []
        self._kind_ids: dict[tuple[str | None, str | None, bool], int] = {}
        self._after = 0  # every row up to this rid has been looked at
        self._since = float("inf")  # the earliest window start the arrays cover

    def read(self, since: float, named: str = "") -> StoreFacts:
        """The records stored since `since`, the unsent backlog and the versions of the named
        blobs whose names start with `named` (none when empty), in one snapshot.

        Raises `StoreError` when the database cannot be read.
        """
        try:
            return self._read(since, named)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.data_dir / DB_FILE}: {exc}") from exc

    def _read(self, since: float, named: str) -> StoreFacts:
        with self._lock:
            if since < self._since:  # a longer window or a clock set back: start over
                self._forget_all()
            self._since = since
            conn = sqlite3.connect(f"file:{self.data_dir / DB_FILE}?mode=ro", uri=True)
            try:
                conn.execute("BEGIN")  # one snapshot: the rows, their topics, the done runs
                done = acks.load(conn)
                published = acks.load(conn, acks.PUBLISHED)
                self._read_new(conn, since)
                self._forget_before(since)
                records = self._facts(conn, done, published)
                # One pass over the unsent rows gives the depth and the deadline's input;
                # `created` is stored in clear, so no decryption.
                unsent = unsent_rows(
                    conn, done, 0, 2**63 - 1, limit=2**62, columns="rid, created, topic"
                )
                through = central_through(conn)
                versions = (
                    named_versions(conn, named) if named else {}
                )  # versions are stored in clear beside the sealed blobs
            finally:
                conn.close()
        return StoreFacts(
            records=records,
            unsent_events=[created for _, created, topic in unsent if topic == "event"],
            unsent=len(unsent),
            oldest_unsent=unsent[0][1] if unsent else None,
            named_versions=versions,
            awaiting_central=sum(1 for rid, _, _ in unsent if published.find(rid) is not None),
            central_through=through or None,
        )

    def _read_new(self, conn: sqlite3.Connection, since: float) -> None:
        if not self._after:  # a first reading starts at the window, not at the oldest row
            self._after = first_rid_since(conn, since) - 1
        rows = conn.execute(
            "SELECT rid, topic, created, body FROM outbox WHERE rid > ? ORDER BY rid",
            (self._after,),
        )
        for rid, topic, created, body in rows:
            self._after = rid
            if created < since or topic not in ("event", "reject"):
                continue
            try:
                facts = payload_facts(topic, created, None, self.sealer.open(rid, body))
            except TamperedRecord:
                continue  # a record that fails authentication is export's business
            kind = (facts.op, facts.reason, facts.void)
            index = self._kind_ids.get(kind)
            if index is None:
                index = self._kind_ids[kind] = len(self._kinds)
                self._kinds.append(kind)
            self._rids.append(rid)
            self._created.append(created)
            self._kind.append(index)

    def _forget_before(self, since: float) -> None:
        """Drop the records that have left the window (stored in rid order, so a prefix)."""
        gone = 0
        while gone < len(self._created) and self._created[gone] < since:
            gone += 1
        if gone:
            del self._rids[:gone], self._created[:gone], self._kind[:gone]

    def _facts(
        self, conn: sqlite3.Connection, done: acks.AckRuns, published: acks.AckRuns
    ) -> list[RecordFacts]:
        if not self._rids:
            return []
        rids, created, kind, kinds, find = (
            self._rids,
            self._created,
            self._kind,
            self._kinds,
            done.find,
        )
        out = []
        i, n = 0, len(rids)
        rows = conn.execute(
            "SELECT rid, topic FROM outbox WHERE rid BETWEEN ? AND ? ORDER BY rid",
            (rids[0], rids[-1]),
        )
        for rid, topic in rows:  # both ascending: a merge; rows pruned meanwhile drop out
            while i < n and rids[i] < rid:
                i += 1
            if i == n:
                break
            if rids[i] == rid:
                op, reason, void = kinds[kind[i]]
                run = find(rid)
                took = published.find(rid) if run is None else None
                out.append(
                    RecordFacts(
                        topic,
                        created[i],
                        run.at if run else None,
                        op,
                        reason,
                        void,
                        took.at if took else None,
                    )
                )
        return out


def first_rid_since(conn: sqlite3.Connection, since: float) -> int:
    """The lowest row id stored at or after `since` (one past the last when none is).

    Rows are appended in time order, so this bisects on row ids: ~20 lookups instead of
    reading a retention period of sealed rows to find a day's worth. A clock set back while
    scanning can move the start by as much as it was set back; status is a figure, and
    `tracescan export --since` still reads every row.
    """
    lo, top = conn.execute(
        "SELECT COALESCE(MIN(rid), 1), COALESCE(MAX(rid), 0) FROM outbox"
    ).fetchone()
    hi = top + 1
    while lo < hi:
        mid = (lo + hi) // 2
        row = conn.execute(
            "SELECT created FROM outbox WHERE rid >= ? ORDER BY rid LIMIT 1", (mid,)
        ).fetchone()
        if row is None or row[0] >= since:
            hi = mid
        else:
            lo = mid + 1
    return int(lo)
