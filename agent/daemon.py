"""`tracescan run`: scanners → recognition → policy → store → uplink, until SIGTERM.

Threads: one per scanner (drivers push `RawScan`s into the inbox), the uplink (owns paho),
and the main thread, which is the store's only writer. The main thread takes whatever is in
the inbox — scans and PUBACK notices alike — decides, and commits it all in one transaction
(group commit); only then does the worker get "accepted". A scan that cannot be committed is
refused with `buffer_full`, never confirmed.
"""

from __future__ import annotations

import gc
import logging
import os
import queue
import signal
import threading
import time
from dataclasses import dataclass, replace
from types import FrameType
from typing import Any, Final

from agent.config import Config
from agent.config.scanners import driver_options
from agent.ops.feedback import Feedback, build_outputs
from agent.ops.localapi import LocalApi, socket_path
from agent.ops.notify import SystemdNotifier
from agent.records.signing import sign_reject
from agent.rules.catalog import Catalog
from agent.rules.decision import Decision
from agent.rules.masterdata import MasterDataError
from agent.service.pipeline import DEFAULT_SOURCE, Control, Pipeline
from agent.store import (
    DB_FILE,
    BufferFull,
    Limits,
    NewRecord,
    Sealer,
    Store,
    StoreError,
    keys,
)
from agent.uplink.client import Uplink
from drivers import RawScan, ScannerThread, open_scanner

log = logging.getLogger(__name__)

_BATCH_MAX: Final = 256
_STOP_DEADLINE: Final = 4.0  # SIGTERM to exit, well inside systemd's and SPEC's 5 s
_PRUNE_EVERY: Final = 600.0  # seconds between retention sweeps


@dataclass(frozen=True, slots=True)
class Acked:
    """Rows the broker acknowledged; the writer marks them sent."""

    rids: list[int]


_Item = RawScan | Acked | Control


class Agent:
    """The running daemon."""

    def __init__(
        self,
        config: Config,
        feedback: list[Feedback] | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.config = config
        # --- ops (issue 8): feedback outputs from [feedback] ---
        self.feedback: list[Feedback] = (
            feedback
            if feedback is not None
            else build_outputs(
                config.feedback,
                config.device.lang,
                send=self.send_to_scanner,
                held=self.stopped_line,
            )
        )
        # Given by `tracescan run`, which sets it on a signal that arrives during start-up.
        self.stop = stop if stop is not None else threading.Event()
        self.inbox: queue.Queue[_Item] = queue.Queue()
        data_dir = config.device.data_dir
        # Keys are created only for a new store: new keys beside old data would orphan it.
        self.keys = keys.load(config.device.key_dir, create=not (data_dir / DB_FILE).exists())
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.sealer = Sealer(self.keys.data)
        limits = Limits(config.store.max_bytes, config.store.retention_days * 86400.0)
        self.store = Store(
            data_dir,
            self.sealer,
            index_key=self.keys.index,
            limits=limits,
            background_checkpoint=True,
        )
        self.catalog = Catalog.load(config.catalog.path) if config.catalog.path else Catalog()
        self.pipeline = Pipeline(config, self.store, self.keys, self.catalog)
        files = self.pipeline.load_files()
        if files:
            self.store.write([], None, named=files)
        self.uplink = Uplink(
            config.mqtt,
            config.device,
            self.sealer,
            self._acked,
            self.stop,
            on_master=self._master,
            on_tampered=self._tampered,
        )
        #: One thread per scanner; `t.state.snapshot()` says whether its device is there.
        self.scanners: list[ScannerThread] = [
            t
            for sc in config.scanners
            if (t := open_scanner(driver_options(sc), self.inbox.put, self.stop)) is not None
        ]
        self._next_prune = 0.0
        # --- ops (issue 8): systemd notify/watchdog and the local API (started by run) ---
        self.notifier = SystemdNotifier()
        self._next_ping = 0.0
        self.api: LocalApi | None = (
            LocalApi(
                self,
                socket_path(data_dir, config.api.socket),
                config.api.group,
                config.api.prometheus_port,
            )
            if config.api.enabled
            else None
        )

    def stopped_line(self, scan: RawScan, decision: Decision) -> bool:
        """Whether `decision` is the refusal that stopped its scanner (writer thread only)."""
        ctx = self.pipeline.contexts.get(scan.source)
        return ctx is not None and ctx.held is decision

    def send_to_scanner(self, source: str, data: bytes) -> bool:
        """Write beeper/LED command bytes to the scanner named `source`, if it can take them."""
        for t in self.scanners:
            send = getattr(t, "send", None)
            if getattr(t, "source", None) == source and callable(send):
                return bool(send(data))
        return False

    def _watchdog(self) -> None:
        """Tell systemd the main loop is alive (a hung loop stops the pings: restart)."""
        interval = self.notifier.watchdog_interval
        if interval is None:
            return
        now = time.monotonic()
        if now >= self._next_ping:
            self._next_ping = now + interval
            self.notifier.watchdog()

    def close(self) -> None:
        """Release the store and the uplink of an agent that is not (or no longer) running."""
        self.uplink.discard()
        self.store.close()

    def _master(self, path: str, payload: bytes) -> None:
        """A retained master-data message (uplink thread): apply it on the writer thread."""
        kind = path.split("/", 1)[0]
        try:
            data = payload.decode("utf-8")
        except UnicodeDecodeError:
            log.warning("master data on %s is not UTF-8; ignored", path)
            return
        self.inbox.put(Control("master", {"kind": kind, "data": data, "origin": f"mqtt {path}"}))

    def _tampered(self, rid: int) -> None:
        """A stored row failed authentication (uplink thread): quarantine it and alert."""
        self.inbox.put(Control("quarantine", {"rid": rid}))

    def _acked(self, rids: list[int]) -> None:
        self.inbox.put(Acked(rids))

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        log.info("received %s: stopping", signal.Signals(signum).name)
        self.stop.set()

    @property
    def op(self) -> str:
        """The default operation in force."""
        return self.pipeline.context(DEFAULT_SOURCE).op

    def run(self) -> int:
        """Run until SIGTERM/SIGINT; returns the process exit status."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        self.raise_alerts(self.store.alerts)
        self.uplink.start()
        for t in self.scanners:
            t.start()
        # --- ops (issue 8): API, then READY=1: the store is open and scanners are being read ---
        if self.api is not None and self.api.start():
            self.feedback.append(self.api.feedback)
        # Everything built so far (modules, biip's tables, master data) lives as long as the
        # process: out of the collector's sight, a full collection costs ~0 ms instead of ~35 ms
        # of the writer thread that every scanner's confirmation waits on.
        gc.freeze()
        self.notifier.ready(f"{len(self.scanners)} scanner(s), op {self.op}")
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
                self._watchdog()  # ops (issue 8)
        finally:
            # --- ops (issue 8) ---
            self.notifier.stopping()
            if self.api is not None:
                self.api.close()
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
        """Decide every item in order and commit the batch in one transaction."""
        batch = self.pipeline.new_batch()
        for item in items:
            if isinstance(item, Acked):
                batch.acked.extend(item.rids)
            elif isinstance(item, Control):
                self.pipeline.control(batch, item)
            else:
                self.pipeline.scan(batch, item)
        head = batch.head if batch.head != self.store.head else None
        records = self.pipeline.sign(batch)
        outcomes = batch.outcomes
        try:
            self.store.write(
                records,
                head,
                batch.acked,
                marks=batch.marks,
                unmarks=batch.unmarks,
                named=batch.named,
                quarantine=batch.quarantine,
            )
        except StoreError as exc:
            full = isinstance(exc, BufferFull)
            log.error("store: %s: %d scan(s) refused with buffer_full", exc, len(outcomes))
            self.pipeline.forget(batch)
            outcomes = [
                replace(o, decision=o.decision.refused("buffer_full"), seq=None)
                if o.decision.accepted and o.note is None
                else o
                for o in outcomes
            ]
            # The refusals and, above all, the PUBACKs still commit when they can: that is
            # how a full buffer drains.
            rejects = [
                self._reject_record(o.scan, o.decision) for o in outcomes if full and o.note is None
            ]
            self._commit_quietly(rejects, batch.acked)
            for reply, _ in batch.replies:
                reply.set_result({"ok": False, "error": f"not stored: {exc}"})
        else:
            self._after_commit(batch.acked, records)
            for reply, result in batch.replies:
                if not reply.done():
                    reply.set_result(result)
        for out in outcomes:
            for fb in self.feedback:
                try:
                    if out.note is not None and out.seq is None and out.decision.accepted:
                        fb.note(out.scan, out.note)
                    else:
                        fb.decided(out.scan, out.decision, out.seq)
                except Exception:
                    log.exception("feedback output failed")

    def request(self, action: str, timeout: float = 5.0, **params: Any) -> dict[str, Any]:
        """Run a control request on the writer thread and wait for its committed result.

        Safe to call from any thread (local API, MQTT master data). Actions: `mode` (op,
        doc, source), `end` (source), `undo` (source), `ack` (source), `contexts`,
        `master` (kind, data), `receipt` (doc), `counters`.
        """
        req = Control(action, params)
        self.inbox.put(req)
        return req.reply.result(timeout)

    def submit(self, scan: RawScan) -> None:
        """Hand a scan to the pipeline as if a scanner had read it (local API)."""
        self.inbox.put(scan)

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
                **self.pipeline.header(time.time()),
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
        ctx = self.pipeline.context(scan.source)
        return self.pipeline.reject_record(scan, ctx, decision)


class StartupError(Exception):
    """The agent cannot start: a file or directory it needs is unusable (message says which)."""


def run(config: Config, stop: threading.Event | None = None) -> int:
    """Entry point of `tracescan run`; `stop` may be set by a signal before the agent runs."""
    try:
        agent = Agent(config, stop=stop)
    except MasterDataError as exc:
        raise StartupError(
            f"master data {exc}: fix the file or remove it from [masterdata]"
        ) from exc
    except (OSError, StoreError) as exc:
        raise StartupError(str(exc)) from exc
    log.info("pid %d", os.getpid())
    return agent.run()
