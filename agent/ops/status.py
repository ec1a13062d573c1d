"""`tracescan status`: is the site meeting its scan and upload targets and the deadline rule?

Provincial work plans ask for 95–100 % scan rate and 100 % upload rate, and for status updates
within 7 working days of sale or use. The figures here are computed from the store itself:

- **scan rate** per operation = accepted ÷ (accepted + refused) scan attempts in the window
  (double reads are absorbed before they are recorded, so they do not count);
- **upload rate** per operation = accepted events the broker has acknowledged ÷ accepted;
- **overdue**: accepted events still unsent whose upload deadline (N working days after the
  day they were stored; weekends and configured holidays do not count) has passed → alarm.

`compute` is pure (records and `now` in, `Status` out), so the deadline arithmetic is tested
with an injected clock; `StatusSource` reads the store through `agent.store.facts` (its own
read-only connection, never the daemon's writer), and `gather` is a one-off reading.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agent.config import StatusConfig
from agent.service.masterdata import BLOB_PREFIX, stored_versions
from agent.service.requests import ControlPort, Counters, ListContexts
from agent.store import Sealer
from agent.store.facts import FactsReader, RecordFacts
from drivers import ScannerSnapshot


@dataclass(slots=True)
class OperationFigures:
    """One operation's counts and rates in the window."""

    accepted: int = 0
    refused: int = 0
    uploaded: int = 0  # the broker took it (PUBACK)
    undone: int = 0
    scan_rate: float | None = None
    upload_rate: float | None = None
    per_hour: float = 0.0
    confirmed: int | None = None  # the central ledger acknowledged it (None: no ledger set)
    confirm_rate: float | None = None


@dataclass(slots=True)
class Status:
    """The figures `tracescan status` prints (and the local API returns)."""

    now: float
    window_hours: float
    deadline_days: int
    online: bool | None = None  # None: the daemon could not be asked
    unsent: int = 0  # not done: not yet acknowledged (by central, where a ledger is set)
    awaiting_confirmation: int = 0  # of the unsent: the broker took them, central has not
    confirmed_through: int | None = None  # central's latest acknowledgement
    oldest_unsent_age: float | None = None  # seconds
    overdue: int = 0
    oldest_overdue: str | None = None  # ISO date the oldest overdue event was stored
    operations: dict[str, OperationFigures] = field(default_factory=dict)
    refused_by_reason: dict[str, int] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)  # live counters of a running daemon
    #: the central master data's version in force per kind (manifests per document)
    masterdata: dict[str, Any] = field(default_factory=dict)
    masterdata_local: dict[str, Any] = field(default_factory=dict)  # the local files' versions
    #: Each scanner's state (`ScannerSnapshot.as_dict()`); None: only a running agent knows.
    scanners: list[dict[str, Any]] | None = None

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
    central: bool = False,
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
        figs = ops.setdefault(rec.op, OperationFigures(confirmed=0 if central else None))
        if rec.topic == "event":
            if rec.void:
                figs.undone += 1
                continue
            figs.accepted += 1
            figs.uploaded += rec.sent is not None or rec.published is not None
            if figs.confirmed is not None:
                figs.confirmed += rec.sent is not None
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
        if figs.confirmed is not None:
            figs.confirmed = min(figs.confirmed, figs.accepted)
            figs.confirm_rate = figs.confirmed / figs.accepted if figs.accepted else None
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


class StatusSource:
    """`status` figures from a store: its facts (read once each, see `FactsReader`) computed
    at `now`. The daemon keeps one for its life; thread-safe. `central`: a ledger is set, so
    "done" means confirmed by it and the figures show confirmed beside uploaded."""

    def __init__(self, data_dir: Path, sealer: Sealer, *, central: bool = False) -> None:
        self.reader = FactsReader(data_dir, sealer)
        self.central = central

    def gather(self, cfg: StatusConfig, now: float, tz: dt.tzinfo | None = None) -> Status:
        """Read the store and compute the status at `now`."""
        facts = self.reader.read(now - cfg.window_hours * 3600.0, named=BLOB_PREFIX)
        status = compute(
            facts.records,
            facts.unsent_events,
            now=now,
            cfg=cfg,
            unsent=facts.unsent,
            oldest_unsent=facts.oldest_unsent,
            tz=tz,
            central=self.central,
        )
        status.awaiting_confirmation = facts.awaiting_central
        status.confirmed_through = facts.central_through
        status.masterdata = stored_versions(facts.named_versions, "central")
        status.masterdata_local = stored_versions(facts.named_versions, "local")
        return status


def _no_scanners() -> Sequence[ScannerSnapshot]:
    return ()


class LiveStatus:
    """The running daemon's status: the store's figures plus what only the daemon knows
    (the link, live counters, scanner contexts, each scanner's device). Called by the local
    API and metrics; `scanners` is given by the daemon, which owns the scanner threads."""

    def __init__(
        self,
        source: StatusSource,
        cfg: StatusConfig,
        port: ControlPort,
        *,
        online: Callable[[], bool],
        device: str,
        scanners: Callable[[], Sequence[ScannerSnapshot]] = _no_scanners,
    ) -> None:
        self.source = source
        self.cfg = cfg
        self.port = port
        self.online = online
        self.device = device
        self.scanners = scanners

    def __call__(self) -> dict[str, Any]:
        """The figures as plain data (`status --json`)."""
        st = self.source.gather(self.cfg, time.time())
        st.online = self.online()
        st.counters = self.port.request(Counters()).get("counters", {})
        st.scanners = [snap.as_dict() for snap in self.scanners()]
        out = st.as_dict()
        out["contexts"] = self.port.request(ListContexts()).get("contexts", {})
        out["device"] = self.device
        return out


def gather(
    data_dir: Path,
    sealer: Sealer,
    cfg: StatusConfig,
    now: float,
    tz: dt.tzinfo | None = None,
    *,
    central: bool = False,
) -> Status:
    """One status reading of a store (`tracescan status` when the agent is not running)."""
    return StatusSource(data_dir, sealer, central=central).gather(cfg, now, tz)


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


def counts_confirmed(status: dict[str, Any]) -> bool:
    """Whether the figures (`Status.as_dict()`) count the central ledger's confirmations: a
    ledger is set, so each operation has `confirmed`."""
    return any(f.get("confirmed") is not None for f in status["operations"].values())


def knows_central(status: dict[str, Any]) -> bool:
    """Whether there is anything to say about the central ledger: its confirmations are
    counted, or the store holds an acknowledgement from it."""
    return counts_confirmed(status) or status.get("confirmed_through") is not None


def render(status: dict[str, Any], source: str) -> str:
    """The human-readable report for `tracescan status` (from `Status.as_dict()`)."""
    online = status.get("online")
    link = "unknown" if online is None else "online" if online else "offline"
    lines = [f"tracescan status ({source})", f"  uplink          : {link}"]
    lines += _scanner_lines(status.get("scanners"), status["now"])
    age = status.get("oldest_unsent_age")
    oldest = f", oldest {_age(age)} old" if age is not None else ""
    lines.append(f"  buffer          : {status['unsent']} unsent{oldest}")
    central = counts_confirmed(status)
    if knows_central(status):
        through = status.get("confirmed_through")
        lines.append(
            f"  central ledger  : confirmed through seq {through if through is not None else '-'};"
            f" {status.get('awaiting_confirmation', 0)} uploaded, awaiting its acknowledgement"
        )
    days = status["deadline_days"]
    if status["overdue"]:
        lines.append(
            f"  upload deadline : ALARM — {status['overdue']} event(s) not uploaded within "
            f"{days} working days (oldest stored {status['oldest_overdue']})"
        )
    else:
        lines.append(f"  upload deadline : ok (nothing unsent past {days} working days)")
    lines.append(f"  last {status['window_hours']:g} h:")
    extra = f" {'confirmed':>9} {'confirm rate':>12}" if central else ""
    lines.append(
        f"    {'operation':<20} {'accepted':>8} {'refused':>7} {'scan rate':>9} "
        f"{'uploaded':>8} {'upload rate':>11}{extra} {'per hour':>8}"
    )
    for op, f in sorted(status["operations"].items()):
        more = f" {f['confirmed']:>9} {_pct(f['confirm_rate']):>12}" if central else ""
        lines.append(
            f"    {op:<20} {f['accepted']:>8} {f['refused']:>7} {_pct(f['scan_rate']):>9} "
            f"{f['uploaded']:>8} {_pct(f['upload_rate']):>11}{more} {f['per_hour']:>8.1f}"
        )
    reasons = status["refused_by_reason"]
    if reasons:
        text = ", ".join(f"{r} {n}" for r, n in sorted(reasons.items(), key=lambda x: -x[1]))
        lines.append(f"  refused by reason: {text}")
    return "\n".join(lines)


def _scanner_lines(scanners: list[dict[str, Any]] | None, now: float) -> list[str]:
    """One line per scanner: is its device being read, when did it last scan, what failed."""
    if scanners is None:
        return ["  scanners        : unknown (only the running agent knows)"]
    if not scanners:
        return ["  scanners        : none configured"]
    lines = ["  scanners:"]
    width = max(len(s["source"]) for s in scanners)
    for s in scanners:
        last = s["last_scan"]
        if s["open"]:
            state = "reading"
            detail = f"last scan {_age(max(0.0, now - last))} ago" if last else "no scan yet"
        else:
            state = "NOT THERE" if not s["present"] else "CANNOT OPEN"
            since = s["absent_since"]
            detail = f"for {_age(max(0.0, now - since))}" if since else ""
            if s["last_error"]:
                detail += f" ({s['last_error']})"
        lines.append(f"    {s['source']:<{width}}  {state:<11}  {s['device']}  {detail}".rstrip())
    return lines
