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
from agent.events import ChainHead, rfc3339, sign_event, sign_reject
from agent.feedback import ConsoleFeedback, Feedback
from agent.policy import Decision, assess
from agent.store import NewRecord, Sealer, Store, StoreError
from agent.uplink import Uplink
from drivers import RawScan
from drivers.factory import open_scanner

log = logging.getLogger(__name__)

_BATCH_MAX: Final = 256
_STOP_DEADLINE: Final = 4.0  # SIGTERM to exit, well inside systemd's and SPEC's 5 s


@dataclass(frozen=True, slots=True)
class Acked:
    """Rows the broker acknowledged; the writer marks them sent."""

    rids: list[int]


_Item = RawScan | Acked


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
        self.keys = keys.load(config.device.key_dir)
        config.device.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.sealer = Sealer(self.keys.data)
        self.store = Store(config.device.data_dir, self.sealer)
        self.catalog = Catalog.load(config.catalog.path) if config.catalog.path else Catalog()
        self.uplink = Uplink(config.mqtt, config.device, self.sealer, self._acked, self.stop)
        self.scanners: list[threading.Thread] = [
            t
            for sc in config.scanners
            if (t := open_scanner(sc, self.inbox.put, self.stop)) is not None
        ]

    def _acked(self, rids: list[int]) -> None:
        self.inbox.put(Acked(rids))

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        log.info("received %s: stopping", signal.Signals(signum).name)
        self.stop.set()

    def run(self) -> int:
        """Run until SIGTERM/SIGINT; returns the process exit status."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
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
        """Take one batch from the inbox, decide, commit, confirm."""
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

    def process(self, items: list[_Item]) -> None:
        """Decide every scan in `items` and commit the batch in one transaction."""
        records: list[NewRecord] = []
        outcomes: list[tuple[RawScan, Decision, int | None]] = []
        acked: list[int] = []
        head = self.store.head
        for item in items:
            if isinstance(item, Acked):
                acked.extend(item.rids)
                continue
            decision = assess(
                item.text, op=self.op, catalog=self.catalog, today=_local_date(item.received_at)
            )
            if decision.accepted:
                body = self._envelope(item, decision)
                body["seq"] = head.seq + 1
                body["prev"] = head.hash
                sealed = sign_event(body, self.keys.signing)
                head = sealed.head
                records.append(NewRecord("event", sealed.payload, head.seq))
                outcomes.append((item, decision, head.seq))
            else:
                body = self._envelope(item, decision)
                body["reason"] = decision.reason
                body["message"] = decision.message(self.config.device.lang)
                records.append(NewRecord("reject", sign_reject(body, self.keys.signing)))
                outcomes.append((item, decision, None))
        try:
            self.store.write(records, head if head != self.store.head else None, acked)
        except StoreError as exc:
            log.error(
                "store: commit failed (%s): %d scan(s) refused with buffer_full", exc, len(outcomes)
            )
            outcomes = [
                (scan, d.refused("buffer_full") if d.accepted else d, None)
                for scan, d, _ in outcomes
            ]
            if acked:  # acknowledgements are not lost: retry marking once the store recovers
                self.inbox.put(Acked(acked))
            self.stop.wait(0.2)
        else:
            if acked:
                self.uplink.marked(acked)
            if records:
                self.uplink.notify()
        for scan, decision, seq in outcomes:
            for fb in self.feedback:
                try:
                    fb.decided(scan, decision, seq)
                except Exception:
                    log.exception("feedback output failed")

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


__all__ = ["Acked", "Agent", "ChainHead", "run"]
