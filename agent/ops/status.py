"""`tracescan status`: is the site meeting its scan and upload targets and the deadline rule?

Provincial work plans ask for 95–100 % scan rate and 100 % upload rate, and for status updates
within 7 working days of sale or use. The figures here are computed from the store itself:

- **scan rate** per operation = accepted ÷ (accepted + refused) scan attempts in the window
  (double reads are absorbed before they are recorded, so they do not count);
- **upload rate** per operation = accepted events the broker has acknowledged ÷ accepted;
- **overdue**: accepted events still unsent whose upload deadline (N working days after the
  day they were stored; weekends and configured holidays do not count) has passed → alarm.

`compute` is pure (records and `now` in, `Status` out), so the deadline arithmetic is tested
with an injected clock; `StatusSource` is the shell that reads a store with its own read-only
connection (it never touches the daemon's writer connection), and `gather` a one-off reading.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
from array import array
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agent.config import StatusConfig
from agent.store import DB_FILE, Sealer, TamperedRecord, acks, unsent_rows


@dataclass(frozen=True, slots=True)
class RecordFacts:
    """What status needs from one stored record (decrypted by the caller)."""

    topic: str
    created: float
    sent: float | None
    op: str | None = None
    reason: str | None = None
    void: bool = False


@dataclass(slots=True)
class OperationFigures:
    """One operation's counts and rates in the window."""

    accepted: int = 0
    refused: int = 0
    uploaded: int = 0
    undone: int = 0
    scan_rate: float | None = None
    upload_rate: float | None = None
    per_hour: float = 0.0


@dataclass(slots=True)
class Status:
    """The figures `tracescan status` prints (and the local API returns)."""

    now: float
    window_hours: float
    deadline_days: int
    online: bool | None = None  # None: the daemon could not be asked
    unsent: int = 0
    oldest_unsent_age: float | None = None  # seconds
    overdue: int = 0
    oldest_overdue: str | None = None  # ISO date the oldest overdue event was stored
    operations: dict[str, OperationFigures] = field(default_factory=dict)
    refused_by_reason: dict[str, int] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)  # live counters of a running daemon

    @property
    def alarm(self) -> bool:
        """Events are past their upload deadline."""
        return self.overdue > 0

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        out = asdict(self)
        out["alarm"] = self.alarm
        return out


def is_working_day(day: dt.date, holidays: frozenset[dt.date]) -> bool:
    """Monday to Friday and not a configured holiday."""
    return day.weekday() < 5 and day not in holidays


def upload_deadline(stored: dt.date, days: int, holidays: frozenset[dt.date]) -> dt.date:
    """The last day an event stored on `stored` may still be uploaded in time.

    `days` working days counted from the day after `stored`:

    >>> upload_deadline(dt.date(2026, 11, 20), 7, frozenset())  # a Friday
    datetime.date(2026, 12, 1)
    """
    day = stored
    left = days
    while left > 0:
        day += dt.timedelta(days=1)
        if is_working_day(day, holidays):
            left -= 1
    return day


def compute(
    records: Iterable[RecordFacts],
    unsent_events: Iterable[float],
    *,
    now: float,
    cfg: StatusConfig,
    unsent: int = 0,
    oldest_unsent: float | None = None,
    tz: dt.tzinfo | None = None,
) -> Status:
    """Figures for the window ending at `now` (records), deadline alarm (unsent event times)."""
    status = Status(now=now, window_hours=cfg.window_hours, deadline_days=cfg.upload_deadline_days)
    status.unsent = unsent
    status.oldest_unsent_age = None if oldest_unsent is None else max(0.0, now - oldest_unsent)
    start = now - cfg.window_hours * 3600.0
    ops = status.operations
    for rec in records:
        if rec.created < start or rec.created > now or rec.op is None:
            continue
        figs = ops.setdefault(rec.op, OperationFigures())
        if rec.topic == "event":
            if rec.void:
                figs.undone += 1
                continue
            figs.accepted += 1
            figs.uploaded += rec.sent is not None
        elif rec.topic == "reject":
            figs.refused += 1
            reason = rec.reason or "unknown"
            status.refused_by_reason[reason] = status.refused_by_reason.get(reason, 0) + 1
    for figs in ops.values():
        # An undo withdraws a scan that was accepted: it counts neither way.
        figs.accepted = max(0, figs.accepted - figs.undone)
        figs.uploaded = min(figs.uploaded, figs.accepted)
        attempts = figs.accepted + figs.refused
        figs.scan_rate = figs.accepted / attempts if attempts else None
        figs.upload_rate = figs.uploaded / figs.accepted if figs.accepted else None
        figs.per_hour = figs.accepted / cfg.window_hours
    holidays = frozenset(dt.date.fromisoformat(d) for d in cfg.holidays)
    today = dt.datetime.fromtimestamp(now, tz).date()
    oldest: dt.date | None = None
    deadlines: dict[dt.date, dt.date] = {}  # a backlog is stored on few distinct days
    for created in unsent_events:
        stored = dt.datetime.fromtimestamp(created, tz).date()
        deadline = deadlines.get(stored)
        if deadline is None:
            deadline = deadlines[stored] = upload_deadline(
                stored, cfg.upload_deadline_days, holidays
            )
        if today > deadline:
            status.overdue += 1
            oldest = stored if oldest is None or stored < oldest else oldest
    status.oldest_overdue = oldest.isoformat() if oldest else None
    return status


def payload_facts(topic: str, created: float, sent: float | None, payload: bytes) -> RecordFacts:
    """The status-relevant facts of a decrypted record."""
    try:
        obj = json.loads(payload)
    except ValueError:
        return RecordFacts(topic, created, sent)
    fields = obj.get("fields")
    void = isinstance(fields, dict) and "void_of" in fields
    return RecordFacts(topic, created, sent, obj.get("op"), obj.get("reason"), void)


class StatusSource:
    """Reads a store for `status`, decrypting each record once.

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

    def gather(self, cfg: StatusConfig, now: float, tz: dt.tzinfo | None = None) -> Status:
        """Read the store (read-only, its own connection) and compute the status at `now`."""
        since = now - cfg.window_hours * 3600.0
        with self._lock:
            if since < self._since:  # a longer window or a clock set back: start over
                self._forget_all()
            self._since = since
            conn = sqlite3.connect(f"file:{self.data_dir / DB_FILE}?mode=ro", uri=True)
            try:
                conn.execute("BEGIN")  # one snapshot: the rows, their topics, the done runs
                done = acks.load(conn)
                self._read_new(conn, since)
                self._forget_before(since)
                records = self._facts(conn, done)
                # One pass over the unsent rows gives the depth and the deadline's input;
                # `created` is stored in clear, so no decryption.
                unsent = unsent_rows(
                    conn, done, 0, 2**63 - 1, limit=2**62, columns="created, topic"
                )
            finally:
                conn.close()
        return compute(
            records,
            [created for created, topic in unsent if topic == "event"],
            now=now,
            cfg=cfg,
            unsent=len(unsent),
            oldest_unsent=unsent[0][0] if unsent else None,
            tz=tz,
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

    def _facts(self, conn: sqlite3.Connection, done: acks.AckRuns) -> list[RecordFacts]:
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
                out.append(
                    RecordFacts(topic, created[i], run.at if run else None, op, reason, void)
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


def gather(
    data_dir: Path, sealer: Sealer, cfg: StatusConfig, now: float, tz: dt.tzinfo | None = None
) -> Status:
    """One status reading of a store (`tracescan status` when the agent is not running)."""
    return StatusSource(data_dir, sealer).gather(cfg, now, tz)


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{100 * rate:.1f} %"


def render(status: dict[str, Any], source: str) -> str:
    """The human-readable report for `tracescan status` (from `Status.as_dict()`)."""
    online = status.get("online")
    link = "unknown" if online is None else "online" if online else "offline"
    lines = [f"tracescan status ({source})", f"  uplink          : {link}"]
    age = status.get("oldest_unsent_age")
    oldest = f", oldest {_age(age)} old" if age is not None else ""
    lines.append(f"  buffer          : {status['unsent']} unsent{oldest}")
    days = status["deadline_days"]
    if status["overdue"]:
        lines.append(
            f"  upload deadline : ALARM — {status['overdue']} event(s) not uploaded within "
            f"{days} working days (oldest stored {status['oldest_overdue']})"
        )
    else:
        lines.append(f"  upload deadline : ok (nothing unsent past {days} working days)")
    lines.append(f"  last {status['window_hours']:g} h:")
    lines.append(
        f"    {'operation':<20} {'accepted':>8} {'refused':>7} {'scan rate':>9} "
        f"{'uploaded':>8} {'upload rate':>11} {'per hour':>8}"
    )
    for op, f in sorted(status["operations"].items()):
        lines.append(
            f"    {op:<20} {f['accepted']:>8} {f['refused']:>7} {_pct(f['scan_rate']):>9} "
            f"{f['uploaded']:>8} {_pct(f['upload_rate']):>11} {f['per_hour']:>8.1f}"
        )
    reasons = status["refused_by_reason"]
    if reasons:
        text = ", ".join(f"{r} {n}" for r, n in sorted(reasons.items(), key=lambda x: -x[1]))
        lines.append(f"  refused by reason: {text}")
    return "\n".join(lines)
