"""The MQTT uplink: the single owner of the paho-mqtt client.

The store is the queue. The uplink reads unsent rows, keeps at most `inflight` of them
unacknowledged at the broker, and reports each PUBACK back to the daemon, which marks the row
sent. paho's own reconnect is off (`reconnect_on_failure=False`) and every connection gets a
fresh client, so no message ever sits in paho's memory across a reconnect: after a reconnect
everything unacknowledged is simply read from the store again and re-sent, byte-identical.

**One thread, no cross-thread wakeups per message.** The uplink thread drives paho's network
I/O itself (`loop_read` / `loop_write` / `loop_misc` on its own selector, the way Home
Assistant and aiomqtt integrate paho) instead of `loop_start()`. PUBACK callbacks therefore run
on this thread, the refill publishes straight into the socket, and the only cross-thread
signal is one byte on a socketpair when the daemon commits new rows (`notify`).

**Two lanes: the backlog never starves live scans.** When a connection comes up, every row
stored so far (rid <= the highest rid at CONNACK) is *backlog*, re-sent in rid (= seq) order;
rows committed after that are *live*. Whenever a window slot frees, a waiting live row takes it
before the next backlog row, so a scan made during a 100k-row drain waits for one PUBACK, not
for the backlog (measured in bench/bench_uplink.py). Receivers already deduplicate by
`(device, seq)` and can order by `seq`; the hash chain (`prev`) is unaffected by arrival order.

**Dead links.** paho alone notices a silent (blackholed) link only ~2x keepalive after the last
byte arrived. The uplink counts any readable byte from the broker as life and drops the
connection after 1.5x keepalive of silence; paho's PINGREQ (sent after 1x keepalive of
silence) guarantees a healthy idle link answers well within that.

**Reconnects** back off exponentially with full jitter. The attempt counter is only reset by a
connection that made progress (a PUBACK for a stored row, or one that stayed up for a
keepalive), so a broker that accepts and at once drops us is not hammered.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import random
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from agent.config import DeviceConfig, MqttConfig
from agent.records.bodies import OFFLINE_STATUS, Origin, status_body
from agent.records.downlink import Refused
from agent.store import OutboxReader, OutboxRow, Sealer
from agent.uplink.central import MAX_RESEND, Ack, Redelivery, open_command
from agent.uplink.tls import TrackedContext, client_context, failure_cause

log = logging.getLogger(__name__)

_CONNACK_TIMEOUT_MAX: Final = 10.0
_STOP_GRACE: Final = 1.5  # seconds to wait for outstanding PUBACKs on SIGTERM
_GOODBYE_WAIT: Final = 1.0  # seconds to wait for the offline status to be acknowledged
_TICK: Final = 0.25  # longest select wait: keepalive and stop checks run at least this often
_READ_AHEAD: Final = 256  # rows decrypted per store query and lane
_ACK_FLUSH_S: Final = 0.05  # PUBACKs are reported to the daemon in batches: fewer commits
_ACK_FLUSH_N: Final = 1024
DEAD_LINK_FACTOR: Final = 1.5  # x keepalive of silence from the broker = the link is dead

_OK: Final = MQTTErrorCode.MQTT_ERR_SUCCESS


@dataclass(frozen=True, slots=True)
class Topics:
    """The device's topic names under the configured prefix."""

    base: str

    @classmethod
    def for_device(cls, prefix: str, site: str, device: str) -> Topics:
        """`{prefix}/{site}/{device}`."""
        return cls(f"{prefix.rstrip('/')}/{site}/{device}")

    @property
    def event(self) -> str:
        """Accepted scans."""
        return f"{self.base}/event"

    @property
    def reject(self) -> str:
        """Refused scans."""
        return f"{self.base}/reject"

    @property
    def status(self) -> str:
        """Retained online/offline status."""
        return f"{self.base}/status"

    def for_record(self, topic: str) -> str:
        """Where a stored record of kind `topic` (event, reject, ...) is published."""
        return f"{self.base}/{topic}"


def backoff_delay(attempt: int, initial: float, cap: float, rng: random.Random) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(cap, initial * 2**attempt)]."""
    return rng.uniform(0.0, min(cap, initial * (2 ** min(attempt, 32))))


def dead_link_after(keepalive: float) -> float:
    """Seconds without a byte from the broker after which the connection is declared dead."""
    return DEAD_LINK_FACTOR * keepalive


class _Lane:
    """A read-ahead cursor over unsent rows: the backlog (rid <= upto) or live rows (upto None)."""

    def __init__(
        self, reader: OutboxReader, after: int, upto: int | None, *, unpublished: bool = False
    ) -> None:
        self.reader = reader
        self.after = after
        self.upto = upto
        self.unpublished = unpublished  # leave out what waits for central's ack
        self.rows: collections.deque[OutboxRow] = collections.deque()
        # The last read came back short: nothing more until new rows are committed. Never
        # cleared for the backlog lane, whose rows all existed when the connection came up.
        self.dry = False

    def next(self) -> OutboxRow | None:
        """The next unsent row of this lane, or None for now."""
        if not self.rows and not self.dry:
            if self.upto is None:
                batch = self.reader.unsent(self.after, _READ_AHEAD)
            else:
                batch = self.reader.unsent_between(
                    self.after, self.upto, _READ_AHEAD, unpublished=self.unpublished
                )
            if batch:
                self.after = batch[-1].rid
            self.dry = len(batch) < _READ_AHEAD
            self.rows.extend(batch)
        return self.rows.popleft() if self.rows else None


class _RetryLane:
    """Rows to publish again (overdue for central's ack, or asked for), read from the store."""

    def __init__(self, reader: OutboxReader, redelivery: Redelivery) -> None:
        self.reader = reader
        self.redelivery = redelivery
        self.rows: collections.deque[OutboxRow] = collections.deque()

    def next(self) -> OutboxRow | None:
        """The next row to publish again, or None for now."""
        while not self.rows and self.redelivery.queue:
            lo, hi = self.redelivery.queue.popleft()
            batch = self.reader.unsent_between(lo - 1, hi, _READ_AHEAD)
            if batch and batch[-1].rid < hi:  # the rest of the range next time
                self.redelivery.queue.appendleft((batch[-1].rid + 1, hi))
            self.rows.extend(r for r in batch if r.topic == "event")
        return self.rows.popleft() if self.rows else None


#: What a message in flight is: its row, and whether it is an event published again (whose
#: PUBACK must not start a new wait for central's ack).
_InFlight = tuple[int, bool, bool]  # (rid, is_event, again)


class Uplink(threading.Thread):
    """Moves rows from the store to the broker until `stop` is set."""

    def __init__(
        self,
        mqtt_cfg: MqttConfig,
        device: DeviceConfig,
        sealer: Sealer,
        on_acked: Callable[[list[int], list[int]], None],
        stop: threading.Event,
        *,
        on_master: Callable[[str, bytes], None] | None = None,
        on_tampered: Callable[[int], None] | None = None,
        status_extra: Callable[[], dict[str, Any]] = dict,
        central_key: Ed25519PublicKey | None = None,
        ack_timeout: float = 60.0,
        on_confirmed: Callable[[int], None] | None = None,
        on_refused: Callable[[str, bytes, str], None] | None = None,
    ) -> None:
        super().__init__(name="uplink", daemon=True)
        #: the pinned central key: events then wait for central's ack, not only the PUBACK
        self.central_key = central_key
        #: told central's `through` (a verified `cmd/ack`)
        self.on_confirmed = on_confirmed
        #: told about a downlink message refused: (topic, payload, why)
        self.on_refused = on_refused
        self.redelivery = Redelivery(ack_timeout)
        self._through = 0  # central's latest `through` as this uplink knows it
        self._next_redelivery = 0.0
        #: told about a stored row that failed authentication (it is skipped, not sent)
        self.on_tampered = on_tampered
        #: receives retained master-data messages: (path after `master/`, payload)
        self.on_master = on_master
        #: members the retained online status carries besides the buffer (master data versions)
        self.status_extra = status_extra
        self.cfg = mqtt_cfg
        self.device = device
        self.sealer = sealer
        self.on_acked = on_acked
        self.stop = stop
        self.topics = Topics.for_device(mqtt_cfg.topic_prefix, device.site, device.id)
        self.connected = threading.Event()
        self.connect_attempts = 0
        # An outage (no connection since `_outage_since`) is a WARNING once, its end an INFO.
        self._outage_since: float | None = None
        self._outage_told = False
        self._loss: str | None = None  # why the current connection ended (first cause known)
        #: monotonic times of the latest connection losses (tests, diagnostics); bounded, as a
        #: flapping link may run for months
        self.losses: collections.deque[float] = collections.deque(maxlen=1000)
        self._rng = random.Random()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._fresh = False  # new rows were committed since the live lane last looked
        self._forgotten: collections.deque[list[int]] = collections.deque()
        self._acked: set[int] = set()  # acknowledged, not yet marked sent by the daemon
        self._ack_batch: list[int] = []  # done with the PUBACK
        self._pub_batch: list[int] = []  # events the broker took, waiting for central's ack
        self._ack_batch_since = 0.0
        # Per-connection state, written by paho callbacks (which run on this thread).
        self._acked_mids: list[int] = []
        self._lost = False
        self._connack = False
        self._connack_rc: ReasonCode | None = None
        self._receive_max: int | None = None
        self._last_inbound = 0.0
        self._fd: int | None = None  # the connection's socket as registered with the selector
        self._tls: TrackedContext | None = None
        self._finished = threading.Event()
        self._reader: OutboxReader | None = None  # the uplink thread's, while it runs

    # --- called from other threads -------------------------------------------------------

    def notify(self) -> None:
        """New rows were committed: wake the drain loop."""
        self._fresh = True
        self._poke()

    def marked(self, rids: list[int]) -> None:
        """The daemon committed `sent` for these rows; they no longer need skipping."""
        self._forgotten.append(rids)

    def finish(self, timeout: float) -> None:
        """Wait for the uplink thread to end after `stop` was set."""
        self._poke()
        self._finished.wait(timeout)

    def discard(self) -> None:
        """Release the wakeup sockets of an uplink that was never started (or has ended)."""
        if not self.is_alive():
            self._wake_r.close()
            self._wake_w.close()

    def _poke(self) -> None:
        # A full socketpair means a wakeup is already pending: one is enough.
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    # --- paho callbacks (run on this thread, inside loop_read/loop_write/loop_misc) -------

    def _on_connect(
        self, client: mqtt.Client, userdata: object, flags: object, rc: ReasonCode, props: Any
    ) -> None:
        self._connack_rc = rc
        rm = getattr(props, "ReceiveMaximum", None) if props is not None else None
        self._receive_max = rm if isinstance(rm, int) else None
        self._connack = True

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        _, sep, path = msg.topic.partition("/master/")
        if sep and path and msg.payload and self.on_master is not None:
            self.on_master(path, bytes(msg.payload))
            return
        kind = msg.topic.removeprefix(f"{self.topics.base}/cmd/")
        if self.central_key is not None and kind in ("ack", "resend") and msg.payload:
            self._central_command(kind, msg.topic, bytes(msg.payload))

    def _central_command(self, kind: str, topic: str, payload: bytes) -> None:
        """A `cmd/ack` or `cmd/resend`: applied only when the pinned central key signed it."""
        assert self.central_key is not None
        try:
            command = open_command(
                kind, payload, self.central_key, site=self.device.site, device=self.device.id
            )
        except Refused as exc:
            if self.on_refused is not None:
                self.on_refused(topic, payload, str(exc))
            return
        if isinstance(command, Ack):
            if command.through > self._through:
                self._through = command.through
                self.redelivery.progressed(time.monotonic())
            if self.on_confirmed is not None:
                self.on_confirmed(command.through)
            return
        if self._reader is None:
            return
        budget = MAX_RESEND
        for first, last in command.ranges:
            rids = self._reader.event_rids(first, last, budget)
            self.redelivery.ask(rids)
            budget -= len(rids)
            if budget <= 0:
                break
        log.info("uplink: central asked for %d range(s) again", len(command.ranges))

    def _on_disconnect(
        self, client: mqtt.Client, userdata: object, flags: object, rc: ReasonCode, props: Any
    ) -> None:
        if getattr(flags, "is_disconnect_packet_from_server", False):
            self._note_loss(f"the broker disconnected it: {rc}")
        else:
            self._note_loss("the broker closed the connection")
        self._lost = True

    def _on_log(self, client: mqtt.Client, userdata: object, level: int, buf: str) -> None:
        # paho's socket errors (a TLS alert, a reset) are only in its log: keep them as the cause.
        if level == mqtt.MQTT_LOG_ERR:
            self._note_loss(buf)

    def _note_loss(self, reason: str) -> None:
        if self._loss is None:
            self._loss = reason

    def _on_publish(
        self, client: mqtt.Client, userdata: object, mid: int, rc: ReasonCode, props: Any
    ) -> None:
        # A v5 PUBACK may carry a failure (e.g. 0x87 not authorized): the broker did not take
        # the message, so the row must stay unsent. Dropping the mid keeps it out of `acked`;
        # the connection is then restarted so the row is retried in order.
        if rc.is_failure:
            self._note_loss(f"the broker refused a publish: {rc}")
            self._lost = True
            return
        self._acked_mids.append(mid)

    # --- the uplink thread ----------------------------------------------------------------

    def run(self) -> None:
        reader = self._reader = OutboxReader(self.device.data_dir, self.sealer)
        selector = selectors.DefaultSelector()
        selector.register(self._wake_r, selectors.EVENT_READ)
        attempt = 0
        try:
            while not self.stop.is_set():
                try:
                    attempt = self._cycle(reader, selector, attempt)
                except Exception:
                    # Never give up for good: the rows stay in the store, a later cycle sends them.
                    log.exception("uplink: unexpected failure; retrying after a pause")
                    self.connected.clear()
                    self.stop.wait(
                        backoff_delay(
                            attempt, self.cfg.backoff_initial, self.cfg.backoff_max, self._rng
                        )
                    )
                    attempt += 1
        finally:
            self._flush_acks(force=True)
            reader.close()
            selector.close()
            self._wake_r.close()
            self._wake_w.close()
            self._finished.set()

    def _cycle(self, reader: OutboxReader, selector: selectors.BaseSelector, attempt: int) -> int:
        """One connection attempt and, if it succeeds, its session; returns the next attempt."""
        client = self._connect(selector)
        if client is None:
            self.stop.wait(
                backoff_delay(attempt, self.cfg.backoff_initial, self.cfg.backoff_max, self._rng)
            )
            return attempt + 1
        began = time.monotonic()
        try:
            progressed = self._session(client, reader, selector)
        finally:
            self.connected.clear()
            self._flush_acks(force=True)
            self._close(client, selector, graceful=self.stop.is_set())
        if self.stop.is_set():
            return 0
        self.losses.append(time.monotonic())
        # A dropped connection starts an outage: said once, whatever the retries say after it.
        self._outage_since, self._outage_told = time.monotonic(), True
        # The client id is named: a second client with it makes the broker drop this one.
        log.warning(
            "uplink: connection to %s:%d lost (%s; client id %r); reconnecting, scans wait in "
            "the buffer",
            self.cfg.host,
            self.cfg.port,
            self._loss or "no reason given",
            self._client_id,
        )
        if progressed or time.monotonic() - began >= self.cfg.keepalive:
            attempt = 0
        # Back off before reconnecting even after a good session, so a broker that accepts
        # and immediately drops connections does not get hammered.
        self.stop.wait(
            backoff_delay(attempt, self.cfg.backoff_initial, self.cfg.backoff_max, self._rng)
        )
        return attempt + 1

    @property
    def _client_id(self) -> str:
        # Neither part may contain "/", so no two devices share this default; it is also their
        # certificate's CN, which the shipped brokers make the client id whatever we send.
        return self.cfg.client_id or f"{self.device.site}/{self.device.id}"

    def _new_client(self) -> mqtt.Client:
        v5 = self.cfg.protocol == "5"
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self._client_id,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            clean_session=None if v5 else True,
            reconnect_on_failure=False,
        )
        client.max_inflight_messages_set(self.cfg.inflight)
        client.will_set(self.topics.status, OFFLINE_STATUS, qos=1, retain=True)
        if self.cfg.ca_file or self.cfg.cert_file:
            self._tls = client_context(self.cfg.ca_file, self.cfg.cert_file, self.cfg.key_file)
            client.tls_set_context(self._tls)
        if self.cfg.username:
            client.username_pw_set(self.cfg.username, self.cfg.password or None)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        # Until CONNACK only: paho formats a log line per packet for an `on_log`, and the
        # refusals worth reading (a TLS alert after the handshake) come before CONNACK.
        client.on_log = self._on_log
        # TCP connect and TLS handshake; a blackholed link must not hold an attempt longer.
        client.connect_timeout = min(5.0, float(self.cfg.keepalive))
        return client

    def _connect(self, selector: selectors.BaseSelector) -> mqtt.Client | None:
        self.connect_attempts += 1
        self._reset_connection_state()
        client = self._new_client()
        where = f"{self.cfg.host}:{self.cfg.port}"
        try:
            if self.cfg.protocol == "5":
                client.connect(self.cfg.host, self.cfg.port, self.cfg.keepalive, clean_start=True)
            else:
                client.connect(self.cfg.host, self.cfg.port, self.cfg.keepalive)
        except ssl.SSLError as exc:
            self._failed_attempt(f"TLS with {where} failed: {self._tls_cause(exc)}", certain=True)
            if self._tls is not None and self._tls.last is not None:
                self._tls.last.close()  # paho drops a socket whose handshake failed unclosed
            self._close(client, selector, graceful=False)
            return None
        except OSError as exc:
            handshake = self._tls is not None and self._tls.last is not None
            if handshake and (cause := self._tls_cause(exc)) != str(exc):
                self._failed_attempt(f"TLS with {where} failed: {cause}", certain=True)
            else:
                self._failed_attempt(f"cannot reach broker {where} ({exc})")
            self._close(client, selector, graceful=False)
            return None
        sock = client.socket()
        if sock is None:
            return None
        self._fd = sock.fileno()
        selector.register(self._fd, selectors.EVENT_READ)
        self._last_inbound = time.monotonic()
        deadline = time.monotonic() + min(_CONNACK_TIMEOUT_MAX, dead_link_after(self.cfg.keepalive))
        while not (self._connack or self._lost or self.stop.is_set()):
            left = deadline - time.monotonic()
            if left <= 0 or not self._network(client, selector, min(_TICK, left)):
                break
        if self._connack_rc is not None and self._connack_rc.is_failure:
            self._failed_attempt(
                f"broker {where} refused the connection: {self._connack_rc}", certain=True
            )
            self._close(client, selector, graceful=False)
            return None
        if not self._connack or self._lost:
            why = self._loss or "no CONNACK"
            if self._tls is not None and (cause := self._tls_cause(why)) != why:
                self._failed_attempt(f"TLS with {where} failed: {cause}", certain=True)
            else:
                self._failed_attempt(f"broker {where} did not accept the connection ({why})")
            self._close(client, selector, graceful=False)
            return None
        client.on_log = None
        if self._outage_since is not None:
            away = time.monotonic() - self._outage_since
            log.info("uplink: connected to %s again after %.0f s", where, away)
        else:
            log.info("uplink: connected to %s", where)
        self._outage_since, self._outage_told = None, False
        self.connected.set()
        return client

    def _failed_attempt(self, what: str, *, certain: bool = False) -> None:
        """A connection attempt failed: an outage is a WARNING once — from its second failed
        attempt (a first may be a blip), or its first when retrying cannot help (`certain`:
        TLS, refused) — and INFO or DEBUG otherwise."""
        first = self._outage_since is None
        if first:
            self._outage_since = time.monotonic()
        if self._outage_told:
            log.debug("uplink: %s; retrying with backoff", what)
        elif first and not certain:
            log.info("uplink: %s; retrying with backoff", what)
        else:
            self._outage_told = True
            log.warning(
                "uplink: %s; retrying with backoff, scans wait in the buffer until it works", what
            )

    def _tls_cause(self, error: BaseException | str) -> str:
        """The library's words about a TLS failure, with the likely cause named first."""
        words = getattr(error, "reason", None) or str(error)
        if detail := getattr(error, "verify_message", None):
            words = f"{words}: {detail}"
        cause = failure_cause(
            error, host=self.cfg.host, port=self.cfg.port, client_cert=bool(self.cfg.cert_file)
        )
        return f"{cause} [{words}]" if cause else str(words)

    def _reset_connection_state(self) -> None:
        self._tls = None
        self._lost = False
        self._connack = False
        self._connack_rc = None
        self._receive_max = None
        self._acked_mids = []
        self._loss = None

    def _network(self, client: mqtt.Client, selector: selectors.BaseSelector, wait: float) -> bool:
        """One round of socket I/O for paho; False once the connection is gone."""
        sock = client.socket()
        if sock is None or self._lost:
            return False
        fd = sock.fileno()
        pending = sock.pending() if isinstance(sock, ssl.SSLSocket) else 0
        mask = selectors.EVENT_READ | (selectors.EVENT_WRITE if client.want_write() else 0)
        if selector.get_key(fd).events != mask:
            selector.modify(fd, mask)
        readable = pending > 0
        writable = False
        for key, events in selector.select(0.0 if pending else wait):
            if key.fileobj is self._wake_r:
                with contextlib.suppress(BlockingIOError):
                    self._wake_r.recv(4096)
                continue
            readable |= bool(events & selectors.EVENT_READ)
            writable |= bool(events & selectors.EVENT_WRITE)
        if readable:
            self._last_inbound = time.monotonic()
            if client.loop_read() != _OK:
                return False
        if writable and client.loop_write() != _OK:
            return False
        if client.loop_misc() != _OK:
            return False
        if time.monotonic() - self._last_inbound > dead_link_after(self.cfg.keepalive):
            silent = time.monotonic() - self._last_inbound
            self._note_loss(
                f"nothing from the broker for {silent:.1f} s (keepalive {self.cfg.keepalive} s): "
                "the link is dead"
            )
            self._lost = True
        return not self._lost

    def _close(
        self, client: mqtt.Client, selector: selectors.BaseSelector, *, graceful: bool
    ) -> None:
        """End the connection. Only a clean shutdown sends DISCONNECT (which cancels the will)."""
        if self._fd is not None:
            # By the fd registered, not the socket's: paho may have closed it already.
            with contextlib.suppress(KeyError, ValueError):
                selector.unregister(self._fd)
            self._fd = None
        if graceful and not self._lost:
            try:
                client.disconnect()
            except Exception:
                log.debug("uplink: disconnect failed", exc_info=True)
        sock = client.socket()
        if sock is not None:
            sock.close()

    def _status(self, reader: OutboxReader, *, online: bool) -> bytes:
        if not online:
            return OFFLINE_STATUS
        depth = reader.unsent_depth()
        now = time.time()
        status = status_body(
            Origin(self.device.id, self.device.site),
            now,
            buffer_depth=depth.unsent,
            oldest_unsent_s=round(now - depth.oldest_created, 3) if depth.oldest_created else 0,
        )
        status.update(self.status_extra())
        return json.dumps(status, separators=(",", ":"), ensure_ascii=False).encode()

    def _flush_acks(self, *, force: bool = False) -> None:
        """Report acknowledged rows to the daemon: in batches, so it commits less often."""
        if not self._ack_batch and not self._pub_batch:
            return
        if (
            force
            or len(self._ack_batch) + len(self._pub_batch) >= _ACK_FLUSH_N
            or time.monotonic() - self._ack_batch_since >= _ACK_FLUSH_S
        ):
            done, self._ack_batch = self._ack_batch, []
            published, self._pub_batch = self._pub_batch, []
            self.on_acked(done, published)

    def _took(self, entry: _InFlight) -> None:
        """The broker took a row: done, or (an event, with a central ledger) waiting for its ack."""
        rid, is_event, again = entry
        if not self._ack_batch and not self._pub_batch:
            self._ack_batch_since = time.monotonic()
        if self.central_key is not None and is_event:
            self._pub_batch.append(rid)
            if not again:
                self.redelivery.published([rid], time.monotonic())
        else:
            self._ack_batch.append(rid)
        self._acked.add(rid)

    def _session(
        self, client: mqtt.Client, reader: OutboxReader, selector: selectors.BaseSelector
    ) -> bool:
        """Drain the outbox over one connection until it drops or `stop` is set.

        Returns True when the broker acknowledged at least one stored row.
        """
        # The broker's Receive Maximum bounds everything unacknowledged, the status included.
        cap = min(self.cfg.inflight, self._receive_max or self.cfg.inflight)
        status = client.publish(
            self.topics.status, self._status(reader, online=True), qos=1, retain=True
        )
        status_pending = True
        if self.on_master is not None:
            # Retained master data (catalog, relations, blocklist, manifests): per device, and
            # site-wide where the broker's ACL grants it. Delivered again on every connect;
            # the daemon ignores versions it already has.
            site_wide = self.topics.base.rsplit("/", 1)[0]
            client.subscribe([(f"{self.topics.base}/master/#", 1), (f"{site_wide}/master/#", 1)])
        if self.central_key is not None:
            # Central's acknowledgement (retained: the latest arrives at once) and its requests
            # for what it lacks. What earlier connections published waits one more timeout.
            client.subscribe(
                [(f"{self.topics.base}/cmd/ack", 1), (f"{self.topics.base}/cmd/resend", 1)]
            )
            self.redelivery.start(reader.awaiting_central(), time.monotonic())
            self._through = max(self._through, reader.central_through())
        split = reader.last_rid()
        waiting = self.central_key is not None
        backlog = _Lane(reader, 0, split, unpublished=waiting)
        live = _Lane(reader, split, None)
        retry = _RetryLane(reader, self.redelivery)
        inflight: dict[int, _InFlight] = {}  # mid -> what it carries
        progressed = False
        stopping_since: float | None = None
        while True:
            while self._forgotten:
                self._acked.difference_update(self._forgotten.popleft())
            if self._acked_mids:
                mids, self._acked_mids = self._acked_mids, []
                for mid in mids:
                    if mid == status.mid:
                        status_pending = False
                    entry = inflight.pop(mid, None)
                    if entry is not None:
                        self._took(entry)
                        progressed = True
            self._flush_acks()
            if waiting and time.monotonic() >= self._next_redelivery:
                self._next_redelivery = time.monotonic() + 1.0
                self.redelivery.tick(reader.confirmed(), time.monotonic())
            if self.stop.is_set():
                stopping_since = stopping_since or time.monotonic()
                if not inflight or time.monotonic() - stopping_since > _STOP_GRACE:
                    self._goodbye(client, selector, inflight)
                    return progressed
            else:
                window = max(1, cap - 1) if status_pending else cap
                if len(inflight) < window and not self._refill(
                    client, (live, retry, backlog), inflight, window
                ):
                    return progressed
            wait = _TICK
            if self._ack_batch or self._pub_batch:
                wait = max(0.0, min(wait, self._ack_batch_since + _ACK_FLUSH_S - time.monotonic()))
            if not self._network(client, selector, wait):
                return progressed

    def _refill(
        self,
        client: mqtt.Client,
        lanes: tuple[_Lane, _RetryLane, _Lane],
        inflight: dict[int, _InFlight],
        window: int,
    ) -> bool:
        """Publish into free window slots: live rows first, then rows to publish again (overdue
        for central's ack, or asked for), then the backlog. False when publishing failed."""
        live, retry, backlog = lanes
        if self._fresh:
            # Cleared before reading, so a commit racing with this read sets it again.
            self._fresh = False
            live.dry = False
        while len(inflight) < window:
            again = False
            row = live.next()
            if row is None:
                row = retry.next()
                again = row is not None
            if row is None:
                row = backlog.next()
            if row is None:
                return True
            if row.rid in self._acked and not again:
                continue
            if row.tampered:
                # Never publish what does not authenticate; the daemon quarantines the row.
                self._acked.add(row.rid)
                if self.on_tampered is not None:
                    self.on_tampered(row.rid)
                continue
            info = client.publish(self.topics.for_record(row.topic), row.payload, qos=1)
            if info.rc != _OK:
                self._note_loss(f"publish failed: {mqtt.error_string(info.rc)}")
                return False
            inflight[info.mid] = (row.rid, row.topic == "event", again)
        return True

    def _goodbye(
        self,
        client: mqtt.Client,
        selector: selectors.BaseSelector,
        inflight: dict[int, _InFlight],
    ) -> None:
        """Clean shutdown: say offline (the will only fires on an unclean loss)."""
        info = client.publish(self.topics.status, OFFLINE_STATUS, qos=1, retain=True)
        deadline = time.monotonic() + _GOODBYE_WAIT
        while info.mid not in self._acked_mids and time.monotonic() < deadline:
            if not self._network(client, selector, _TICK):
                log.debug("uplink: offline status not confirmed")
                break
        # Rows acknowledged while saying goodbye are still reported, so they are not re-sent.
        for mid in self._acked_mids:
            entry = inflight.get(mid)
            if entry is not None:
                self._took(entry)
        self._acked_mids = []
