"""`tracescan run`: the composition root. Nothing imports this module but `tracescan run`.

It builds the parts from the configuration and wires them together: keys → store → pipeline
and writer (`agent/service`) → uplink (`agent/uplink`) → scanner drivers (`drivers/`) →
feedback, local API, sd_notify (`agent/ops`). Threads: one per scanner (drivers put `RawScan`s
into the writer's inbox), the uplink (owns paho), the local API's connections, and the main
thread, which is the writer: the store's only writer.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import os
import signal
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any, Final

from agent.config import Config
from agent.config.scanners import driver_options
from agent.ops.feedback import build_outputs
from agent.ops.localapi import LocalApi, socket_path
from agent.ops.notify import SystemdNotifier
from agent.ops.status import LiveStatus, StatusSource
from agent.records.downlink import Refused
from agent.records.verify import public_key_from_b64
from agent.rules.catalog import Catalog
from agent.rules.masterdata import MasterDataError, MasterKind
from agent.service.documents import ReceiptReader
from agent.service.masterdata import MasterGate
from agent.service.masterfiles import read_catalog, read_master_file
from agent.service.pipeline import Pipeline
from agent.service.requests import ApplyMasterData, Quarantine, RaiseAlert
from agent.service.writer import Feedback, Writer
from agent.store import (
    DB_FILE,
    InstanceLock,
    Limits,
    NamedBlob,
    Sealer,
    Store,
    StoreError,
    keys,
)
from agent.uplink.client import Uplink
from drivers import ScannerSnapshot, ScannerThread, open_scanner

log = logging.getLogger(__name__)

_STOP_DEADLINE: Final = 4.0
_REFUSED_REMEMBERED: Final = 1024  # distinct refused messages not alerted twice  # SIGTERM to exit, well inside systemd's and SPEC's 5 s


class Agent:
    """The running daemon, assembled from its parts."""

    def __init__(
        self,
        config: Config,
        feedback: list[Feedback] | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.config = config
        # Given by `tracescan run`, which sets it on a signal that arrives during start-up.
        self.stop = stop if stop is not None else threading.Event()
        data_dir = config.device.data_dir
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        # One agent per store, before anything is created or opened in it (keys included).
        self.instance = InstanceLock(data_dir).acquire()
        try:
            self._compose(config, feedback)
        except BaseException:
            self.instance.release()
            raise

    def _compose(self, config: Config, feedback: list[Feedback] | None) -> None:
        """Build the parts (the data directory is ours: `self.instance` holds it)."""
        data_dir = config.device.data_dir
        # Keys are created only for a new store: new keys beside old data would orphan it.
        self.keys = keys.load(config.device.key_dir, create=not (data_dir / DB_FILE).exists())
        self.sealer = Sealer(self.keys.data)
        limits = Limits(config.store.max_bytes, config.store.retention_days * 86400.0)
        self.store = Store(
            data_dir,
            self.sealer,
            index_key=self.keys.index,
            limits=limits,
            background_checkpoint=True,
        )
        catalog = read_catalog(config.catalog.path) if config.catalog.path else Catalog()
        self.pipeline = Pipeline(config, self.store, self.keys.signing, catalog)
        self.writer = Writer(
            self.store,
            self.pipeline,
            feedback
            if feedback is not None
            else build_outputs(
                config.feedback,
                config.device.lang,
                send=self.send_to_scanner,
                held=self.pipeline.contexts.held,
            ),
        )
        self._load_master_files()
        key = config.central.public_key
        central_key = public_key_from_b64(key) if key else None
        self.master_gate = MasterGate(
            central_key,
            allow_unsigned=config.masterdata.allow_unsigned,
            site=config.device.site,
            device=config.device.id,
            bounds=self.pipeline.masterdata.bounds,
        )
        self._refused: set[bytes] = set()
        self.uplink = Uplink(
            config.mqtt,
            config.device,
            self.sealer,
            self.writer.acked,
            self.stop,
            on_master=self._master,
            on_tampered=self._tampered,
            status_extra=self._status_extra,
            central_key=central_key,
            ack_timeout=config.central.ack_timeout,
            on_confirmed=self.writer.confirmed,
            on_refused=self._refused_command,
        )
        self.writer.listeners.append(self.uplink)
        #: One thread per scanner; `t.state.snapshot()` says whether its device is there.
        self.scanners: list[ScannerThread] = [
            t
            for sc in config.scanners
            if (t := open_scanner(driver_options(sc), self.writer.inbox.put, self.stop)) is not None
        ]
        self.notifier = SystemdNotifier()
        self._next_ping = 0.0
        self.api: LocalApi | None = None
        if config.api.enabled:
            status = LiveStatus(
                StatusSource(data_dir, self.sealer, central=central_key is not None),
                config.status,
                self.writer,
                online=self.uplink.connected.is_set,
                device=f"{config.device.site}/{config.device.id}",
                scanners=self.scanner_states,
            )
            self.api = LocalApi(
                self.writer,
                socket_path(data_dir, config.api.socket),
                lang=config.device.lang,
                held=self.pipeline.contexts.held,
                status=status,
                receipts=ReceiptReader(data_dir, self.sealer).codes,
                scanners=[sc.name for sc in config.scanners],
                api_sources=config.api.sources,
                max_clients=config.api.max_clients,
                idle_timeout=config.api.idle_timeout,
                group=config.api.group,
                prometheus_port=config.api.prometheus_port,
            )

    def _load_master_files(self) -> None:
        """Master data from the configured files, persisted when newer than what is stored."""
        md = self.config.masterdata
        sources: list[tuple[MasterKind, Path]] = []
        if md.relations:
            sources.append(("relations", md.relations))
        if md.blocklist:
            sources.append(("blocklist", md.blocklist))
        sources += [("manifest", p) for p in md.manifests]
        blobs: list[NamedBlob] = []
        bounds = self.pipeline.masterdata.bounds
        for kind, path in sources:
            offer = self.pipeline.masterdata.offer(read_master_file(kind, path, bounds), "local")
            if offer.blob is not None:
                blobs.append(offer.blob)
        if blobs:
            self.store.write([], None, named=blobs)

    def scanner_states(self) -> list[ScannerSnapshot]:
        """Each scanner's device state now (status, metrics, the local API; any thread)."""
        return [t.state.snapshot() for t in self.scanners]

    def send_to_scanner(self, source: str, data: bytes) -> bool:
        """Write beeper/LED command bytes to the scanner named `source`, if it can take them."""
        for t in self.scanners:
            send = getattr(t, "send", None)
            if getattr(t, "source", None) == source and callable(send):
                return bool(send(data))
        return False

    def _master(self, path: str, payload: bytes) -> None:
        """A retained master-data message (uplink thread): verified and parsed here, applied on
        the writer thread; a refused one is logged and raised as an alert, once per message."""
        origin = f"mqtt master/{path}"
        try:
            value = self.master_gate.open(path, payload)
        except (Refused, MasterDataError) as exc:
            self._refused_downlink(origin, payload, f"master data on {origin} refused: {exc}")
            return
        self.writer.inbox.put(ApplyMasterData(value=value, source="central", origin=origin))

    def _refused_downlink(self, origin: str, payload: bytes, why: str) -> None:
        """A message from the network that must not be applied (uplink thread): a WARNING and
        a signed alert, once per distinct message (a retained one comes again on reconnects)."""
        digest = hashlib.sha256(origin.encode() + b"\0" + payload).digest()
        if digest in self._refused:
            return
        if len(self._refused) >= _REFUSED_REMEMBERED:
            self._refused.clear()
        self._refused.add(digest)
        log.warning("%s", why)
        self.writer.inbox.put(RaiseAlert(text=why))

    def _refused_command(self, topic: str, payload: bytes, why: str) -> None:
        """A `cmd/ack` or `cmd/resend` that is not the pinned central key's (uplink thread)."""
        self._refused_downlink(topic, payload, f"central command on {topic} refused: {why}")

    def _status_extra(self) -> dict[str, Any]:
        """What the retained online status says besides the buffer (uplink thread): the
        master data in force, as the writer last published it."""
        return {"masterdata": self.pipeline.masterdata.published}

    def _tampered(self, rid: int) -> None:
        """A stored row failed authentication (uplink thread): quarantine it and alert."""
        self.writer.inbox.put(Quarantine(rid=rid))

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        log.info("received %s: stopping", signal.Signals(signum).name)
        self.stop.set()

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
        self.instance.release()

    def run(self) -> int:
        """Run until SIGTERM/SIGINT; returns the process exit status."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        self.writer.raise_alerts(self.store.alerts + self.pipeline.startup_alerts())
        self.uplink.start()
        for t in self.scanners:
            t.start()
        if self.api is not None and self.api.start():
            self.writer.feedback.append(self.api.feedback)
        # Everything built so far (modules, biip's tables, master data) lives as long as the
        # process: out of the collector's sight, a full collection costs ~0 ms instead of ~35 ms
        # of the writer thread that every scanner's confirmation waits on.
        gc.freeze()
        op = self.pipeline.contexts.default.op
        self.notifier.ready(f"{len(self.scanners)} scanner(s), op {op}")
        log.info(
            "tracescan running: device %s/%s, %d scanner(s), op %s, seq %d",
            self.config.device.site,
            self.config.device.id,
            len(self.scanners),
            op,
            self.store.head.seq,
        )
        try:
            while not self.stop.is_set():
                self.writer.pump(block=True, pause=self.stop.wait)
                self._watchdog()
        finally:
            self.notifier.stopping()
            if self.api is not None:
                self.api.close()
            deadline = time.monotonic() + _STOP_DEADLINE
            for t in self.scanners:
                t.join(timeout=max(0.0, min(0.5, deadline - time.monotonic())))
            self.writer.pump(block=False)  # finish in-flight commits: scans already read are kept
            self.uplink.finish(max(0.0, deadline - time.monotonic() - 0.3))
            self.writer.pump(block=False)  # PUBACKs that arrived during the goodbye
            self.store.close()
            self.instance.release()
            log.info("tracescan stopped")
        return 0


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
