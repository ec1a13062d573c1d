"""The writer: the one thread that decides scans and writes the store.

Scanners, the uplink (PUBACK notices, master data, tampered rows) and the local API put items
into the inbox; the writer takes whatever is there — up to `BATCH_MAX` items — decides each in
order through the `Pipeline`, and commits them all in one transaction (group commit). Only then
is the worker told "accepted". A scan that cannot be committed is refused with `buffer_full`,
never confirmed.
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Final, Protocol

from agent.records.bodies import alert_body
from agent.records.signing import sign_reject
from agent.rules.decision import Decision
from agent.service.batch import Outcome
from agent.service.control import apply
from agent.service.pipeline import Pipeline
from agent.service.requests import ControlRequest, Reply, Request
from agent.store import BufferFull, NewRecord, Store, StoreError
from drivers import RawScan

log = logging.getLogger(__name__)

#: Items decided and committed together at most.
BATCH_MAX: Final = 256
_PRUNE_EVERY: Final = 600.0  # seconds between retention sweeps
_STEADY_BEFORE_PRUNE: Final = 86400.0  # after a clock step, no retention sweep for this long
_FAILURE_PAUSE: Final = 0.2  # a full disk must not become a busy loop


@dataclass(frozen=True, slots=True)
class Acked:
    """Rows the broker acknowledged: done (`rids`), or events that now wait for central's
    acknowledgement (`published`, with a central ledger)."""

    rids: list[int]
    published: list[int] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Confirmed:
    """The central ledger holds every event numbered up to `through` (a verified `cmd/ack`)."""

    through: int


InboxItem = RawScan | Acked | Confirmed | ControlRequest


class Feedback(Protocol):
    """An output the worker sees or hears (console, beeper, local API, ...)."""

    def decided(self, scan: RawScan, decision: Decision, seq: int | None) -> None:
        """Called once per scan, after the decision is durable (or definitely refused)."""

    def note(self, scan: RawScan, text: str) -> None:
        """A scan that was not a code: a command applied, a double read absorbed."""


class CommitListener(Protocol):
    """Told what a commit changed (the uplink: rows to stop skipping, rows to send)."""

    def marked(self, rids: list[int]) -> None:
        """These rows are now committed as sent."""

    def notify(self) -> None:
        """New rows were committed."""


def _readings() -> tuple[float, float]:
    return time.time(), time.monotonic()


class Writer:
    """Decides and commits inbox items on the calling thread (the daemon's main thread)."""

    def __init__(self, store: Store, pipeline: Pipeline, feedback: list[Feedback]) -> None:
        self.store = store
        self.pipeline = pipeline
        self.feedback = feedback
        self.listeners: list[CommitListener] = []
        self.inbox: queue.Queue[InboxItem] = queue.Queue()
        self._next_prune = 0.0
        if pipeline.clock.at_start is not None:  # started behind the newest record: wait
            self._next_prune = time.monotonic() + _STEADY_BEFORE_PRUNE
        self._pause: Callable[[float], object] = time.sleep
        #: the wall and monotonic clocks, read together (a test may stand in for them)
        self.readings: Callable[[], tuple[float, float]] = _readings

    # --- the control port: safe to call from any thread ------------------------------------

    def request(self, req: ControlRequest, timeout: float = 5.0) -> Reply:
        """Run `req` on the writer thread and wait for its committed reply."""
        self.inbox.put(req)
        return req.reply.result(timeout)

    def submit(self, scan: RawScan) -> None:
        """Hand a scan over as if a scanner had read it."""
        self.inbox.put(scan)

    def acked(self, rids: list[int], published: list[int]) -> None:
        """The broker acknowledged these rows (uplink thread)."""
        self.inbox.put(Acked(rids, published))

    def confirmed(self, through: int) -> None:
        """Central acknowledged every event up to `through` (uplink thread)."""
        self.inbox.put(Confirmed(through))

    # --- the writer thread ----------------------------------------------------------------

    def pump(self, *, block: bool, pause: Callable[[float], object] | None = None) -> None:
        """Take one batch from the inbox, decide, commit, confirm; prune now and then.

        `pause` waits after a failed commit (the daemon passes its stop event's wait).
        """
        if pause is not None:
            self._pause = pause
        items: list[InboxItem] = []
        try:
            if block:
                items.append(self.inbox.get(timeout=0.5))
            while len(items) < BATCH_MAX:
                items.append(self.inbox.get_nowait())
        except queue.Empty:
            pass
        wall, mono = self.readings()
        step = self.pipeline.clock.observe(wall, mono)
        if step is not None:
            log.warning("clock: %s", step.describe())
            self.raise_alerts([step.describe()])
            # A step forward would make retention prune a day's (or a year's) audit trail
            # early: prune again only once the clock has been steady for a day.
            self._next_prune = max(self._next_prune, mono + _STEADY_BEFORE_PRUNE)
        if items:
            self.process(items)
        if mono >= self._next_prune:
            self._next_prune = mono + _PRUNE_EVERY
            try:
                pruned = self.store.prune(now=wall)
            except StoreError as exc:
                log.warning("store: pruning failed (%s)", exc)
            else:
                if pruned:
                    log.info("store: pruned %d sent record(s)", pruned)

    def process(self, items: list[InboxItem]) -> None:
        """Decide every item in order and commit the batch in one transaction."""
        pipeline = self.pipeline
        batch = pipeline.new_batch()
        for item in items:
            if isinstance(item, Acked):
                batch.acked.extend(item.rids)
                batch.published.extend(item.published)
            elif isinstance(item, Confirmed):
                batch.confirmed_through = max(batch.confirmed_through or 0, item.through)
            elif isinstance(item, Request):
                apply(pipeline, batch, item)
            else:
                pipeline.scan(batch, item)
        head = batch.head if batch.head != self.store.head else None
        records = pipeline.sign(batch)
        outcomes = batch.outcomes
        try:
            self.store.write(
                records,
                head,
                batch.acked,
                marks=batch.marks,
                named=batch.named,
                quarantine=batch.quarantine,
                published=batch.published,
                confirmed_through=batch.confirmed_through,
            )
        except StoreError as exc:
            outcomes = self._failed(exc, batch.acked, outcomes)
            # Acknowledgements are never lost: they commit with a later batch.
            if batch.published or batch.confirmed_through is not None:
                self.inbox.put(Acked([], batch.published))
                if batch.confirmed_through is not None:
                    self.inbox.put(Confirmed(batch.confirmed_through))
            pipeline.forget(batch)
            for reply, _ in batch.replies:
                reply.set_result({"ok": False, "error": f"not stored: {exc}"})
        else:
            self._committed([*batch.acked, *batch.published], records)
            for reply, result in batch.replies:
                if not reply.done():
                    reply.set_result(result)
        self._tell(outcomes)

    def _failed(self, exc: StoreError, acked: list[int], outcomes: list[Outcome]) -> list[Outcome]:
        """A batch did not commit: its scans are refused with `buffer_full`, never confirmed."""
        log.error("store: %s: %d scan(s) refused with buffer_full", exc, len(outcomes))
        refused = [
            replace(o, decision=o.decision.refused("buffer_full"), seq=None)
            if o.decision.accepted and o.note is None
            else o
            for o in outcomes
        ]
        # The refusals and, above all, the PUBACKs still commit when they can: that is how a
        # full buffer drains.
        full = isinstance(exc, BufferFull)
        rejects = [
            self.pipeline.reject_record(o.scan, o.decision)
            for o in refused
            if full and o.note is None
        ]
        self._commit_quietly(rejects, acked)
        return refused

    def _tell(self, outcomes: list[Outcome]) -> None:
        for out in outcomes:
            for fb in self.feedback:
                try:
                    if out.note is not None and out.seq is None and out.decision.accepted:
                        fb.note(out.scan, out.note)
                    else:
                        fb.decided(out.scan, out.decision, out.seq)
                except Exception:
                    log.exception("feedback output failed")

    def _commit_quietly(self, records: list[NewRecord], acked: list[int]) -> None:
        """Best-effort commit after a failure; acknowledgements are retried, never lost."""
        if not records and not acked:
            return
        try:
            self.store.write(records, None, acked)
        except StoreError as exc:
            log.error("store: still failing (%s); will retry", exc)
            if acked:
                self.inbox.put(Acked(acked))
            self._pause(_FAILURE_PAUSE)
        else:
            self._committed(acked, records)

    def _committed(self, acked: list[int], records: list[NewRecord]) -> None:
        for listener in self.listeners:
            if acked:
                listener.marked(acked)
            if records:
                listener.notify()

    def raise_alerts(self, alerts: list[str]) -> None:
        """Log, and publish as signed `alert` records, what went wrong outside a scan."""
        if not alerts:
            return
        records = []
        for text in alerts:
            log.error("ALERT: %s", text)
            body = alert_body(self.pipeline.origin, time.time(), text, self.store.head.seq)
            records.append(NewRecord("alert", sign_reject(body, self.pipeline.signing)))
        try:
            self.store.write(records, None)
        except StoreError as exc:
            log.error("store: cannot record alerts (%s)", exc)
        else:
            self._committed([], records)
