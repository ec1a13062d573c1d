"""`tracescan run`: scanners → recognition → policy → store → uplink, until SIGTERM.

Threads: one per scanner (drivers push `RawScan`s into the inbox), the uplink (owns paho),
and the main thread, which is the store's only writer. The main thread takes whatever is in
the inbox — scans and PUBACK notices alike — decides, and commits it all in one transaction
(group commit); only then does the worker get "accepted". A scan that cannot be committed is
refused with `buffer_full`, never confirmed.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import queue
import signal
import threading
import time
import uuid
from dataclasses import dataclass
from types import FrameType
from typing import Final

from agent import keys
from agent.catalog import Catalog
from agent.config import Config
from agent.events import rfc3339, sign_event, sign_reject
from agent.feedback import ConsoleFeedback, Feedback
from agent.policy import Decision, assess
from agent.store import (
    DB_FILE,
    BufferFull,
    CodeMark,
    Limits,
    NewRecord,
    Sealer,
    Store,
    StoreError,
)
from agent.uplink import Uplink
from drivers import RawScan
from drivers.factory import open_scanner

log = logging.getLogger(__name__)

_BATCH_MAX: Final = 256
_STOP_DEADLINE: Final = 4.0  # SIGTERM to exit, well inside systemd's and SPEC's 5 s
_PRUNE_EVERY: Final = 600.0  # seconds between retention sweeps


@dataclass(frozen=True, slots=True)
class Acked:
    """Rows the broker acknowledged; the writer marks them sent."""

    rids: list[int]


_Item = RawScan | Acked
_Outcome = tuple[RawScan, Decision, int | None]


class Agent:
    """The running daemon."""

    def __init__(self, config: Config, feedback: list[Feedback] | None = None) -> None:
        self.config = config
        self.op = config.operation.mode
        self.doc = config.operation.doc
        self.feedback: list[Feedback] = (
            feedback if feedback is not None else [ConsoleFeedback(config.device.lang)]
        )
        self.stop = threading.Event()
        self.inbox: queue.Queue[_Item] = queue.Queue()
        data_dir = config.device.data_dir
        # Keys are created only for a new store: new keys beside old data would orphan it.
        self.keys = keys.load(config.device.key_dir, create=not (data_dir / DB_FILE).exists())
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.sealer = Sealer(self.keys.data)
        limits = Limits(config.store.max_bytes, config.store.retention_days * 86400.0)
        self.store = Store(data_dir, self.sealer, index_key=self.keys.index, limits=limits)
        self.catalog = Catalog.load(config.catalog.path) if config.catalog.path else Catalog()
        self.uplink = Uplink(config.mqtt, config.device, self.sealer, self._acked, self.stop)
        self.scanners: list[threading.Thread] = [
            t
            for sc in config.scanners
            if (t := open_scanner(sc, self.inbox.put, self.stop)) is not None
        ]
        self._next_prune = 0.0

    def close(self) -> None:
        """Release the store and the uplink of an agent that is not (or no longer) running."""
        self.uplink.discard()
        self.store.close()

    def _acked(self, rids: list[int]) -> None:
        self.inbox.put(Acked(rids))

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        log.info("received %s: stopping", signal.Signals(signum).name)
        self.stop.set()

    def run(self) -> int:
        """Run until SIGTERM/SIGINT; returns the process exit status."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        self.raise_alerts(self.store.alerts)
        self.uplink.start()
        for t in self.scanners:
            t.start()
        log.info(
            "tracescan running: device %s/%s, %d scanner(s), op %s, seq %d",
            self.config.device.site,
            self.config.device.id,
            len(self.scanners),
            self.op,
            self.store.head.seq,
        )
        try:
            while not self.stop.is_set():
                self._pump(block=True)
        finally:
            deadline = time.monotonic() + _STOP_DEADLINE
            for t in self.scanners:
                t.join(timeout=max(0.0, min(0.5, deadline - time.monotonic())))
            self._pump(block=False)  # finish in-flight commits: scans already read are kept
            self.uplink.finish(max(0.0, deadline - time.monotonic() - 0.3))
            self._pump(block=False)  # PUBACKs that arrived during the goodbye
            self.store.close()
        return 0

    def _pump(self, *, block: bool) -> None:
        """Take one batch from the inbox, decide, commit, confirm; prune now and then."""
        items: list[_Item] = []
        try:
            if block:
                items.append(self.inbox.get(timeout=0.5))
            while len(items) < _BATCH_MAX:
                items.append(self.inbox.get_nowait())
        except queue.Empty:
            pass
        if items:
            self.process(items)
        now = time.monotonic()
        if now >= self._next_prune:
            self._next_prune = now + _PRUNE_EVERY
            try:
                pruned = self.store.prune()
            except StoreError as exc:
                log.warning("store: pruning failed (%s)", exc)
            else:
                if pruned:
                    log.info("store: pruned %d sent record(s)", pruned)

    def process(self, items: list[_Item]) -> None:
        """Decide every scan in `items` and commit the batch in one transaction."""
        records: list[NewRecord] = []
        outcomes: list[_Outcome] = []
        acked: list[int] = []
        marks: list[CodeMark] = []
        head = self.store.head
        for item in items:
            if isinstance(item, Acked):
                acked.extend(item.rids)
                continue
            today = _local_date(item.received_at)
            decision = assess(item.text, op=self.op, catalog=self.catalog, today=today)
            if decision.accepted:
                body = self._envelope(item, decision)
                body["seq"] = head.seq + 1
                body["prev"] = head.hash
                sealed = sign_event(body, self.keys.signing)
                head = sealed.head
                records.append(NewRecord("event", sealed.payload, head.seq))
                marks.append(CodeMark(self.store.mac(decision.text), self.op, head.seq))
                outcomes.append((item, decision, head.seq))
            else:
                records.append(self._reject_record(item, decision))
                outcomes.append((item, decision, None))
        try:
            self.store.write(records, head if head != self.store.head else None, acked, marks)
        except BufferFull as exc:
            log.error("store: %s: %d scan(s) refused with buffer_full", exc, len(outcomes))
            outcomes = self._refuse_all(outcomes)
            # The refusals and, above all, the PUBACKs still commit: that is how it drains.
            rejects = [self._reject_record(scan, d) for scan, d, _ in outcomes]
            self._commit_quietly(rejects, acked)
        except StoreError as exc:
            log.error("store: commit failed (%s): %d scan(s) refused", exc, len(outcomes))
            outcomes = self._refuse_all(outcomes)
            self._commit_quietly([], acked)
        else:
            self._after_commit(acked, records)
        for scan, decision, seq in outcomes:
            for fb in self.feedback:
                try:
                    fb.decided(scan, decision, seq)
                except Exception:
                    log.exception("feedback output failed")

    @staticmethod
    def _refuse_all(outcomes: list[_Outcome]) -> list[_Outcome]:
        return [(s, d.refused("buffer_full") if d.accepted else d, None) for s, d, _ in outcomes]

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
            self.stop.wait(0.2)  # a full disk must not become a busy loop
        else:
            self._after_commit(acked, records)

    def _after_commit(self, acked: list[int], records: list[NewRecord]) -> None:
        if acked:
            self.uplink.marked(acked)
        if records:
            self.uplink.notify()

    def raise_alerts(self, alerts: list[str]) -> None:
        """Log, and publish as signed `alert` records, what went wrong outside a scan."""
        if not alerts:
            return
        records = []
        for text in alerts:
            log.error("ALERT: %s", text)
            body: dict[str, object] = {
                "v": 1,
                "id": str(uuid.uuid4()),
                "device": self.config.device.id,
                "site": self.config.device.site,
                "ts": rfc3339(time.time()),
                "alert": text,
                "after_seq": self.store.head.seq,
            }
            records.append(NewRecord("alert", sign_reject(body, self.keys.signing)))
        try:
            self.store.write(records, None)
        except StoreError as exc:
            log.error("store: cannot record alerts (%s)", exc)
        else:
            self._after_commit([], records)

    def _reject_record(self, scan: RawScan, decision: Decision) -> NewRecord:
        body = self._envelope(scan, decision)
        body["reason"] = decision.reason
        body["message"] = decision.message(self.config.device.lang)
        return NewRecord("reject", sign_reject(body, self.keys.signing))

    def _envelope(self, scan: RawScan, decision: Decision) -> dict[str, object]:
        return {
            "v": 1,
            "id": str(uuid.uuid4()),
            "device": self.config.device.id,
            "site": self.config.device.site,
            "op": self.op,
            "code": decision.text,
            "kind": decision.kind,
            "level": decision.level,
            "fields": decision.fields,
            "ts": rfc3339(scan.received_at),
            "doc": self.doc,
        }


def _local_date(epoch: float) -> dt.date:
    return dt.datetime.fromtimestamp(epoch).astimezone().date()


def run(config: Config) -> int:
    """Entry point of `tracescan run`."""
    agent = Agent(config)
    log.info("pid %d", os.getpid())
    return agent.run()
