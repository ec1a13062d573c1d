"""The MQTT uplink: the single owner of the paho-mqtt client.

The store is the queue. The uplink reads unsent rows in order, keeps at most `inflight` of them
unacknowledged at the broker, and reports each PUBACK back to the daemon, which marks the row
sent. paho's own reconnect is off (`reconnect_on_failure=False`) and every connection gets a
fresh client, so no message ever sits in paho's memory across a reconnect: after a reconnect
everything unacknowledged is simply read from the store again and re-sent, byte-identical,
in order. Reconnects back off exponentially with full jitter.

paho callbacks run on paho's network thread; they only append to deques and set events.
All bookkeeping happens on the uplink thread.
"""

from __future__ import annotations

import collections
import json
import logging
import random
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from agent.config import DeviceConfig, MqttConfig
from agent.events import rfc3339
from agent.store import OutboxReader, Sealer

log = logging.getLogger(__name__)

_CONNACK_TIMEOUT: Final = 10.0
_STOP_GRACE: Final = 1.5  # seconds to wait for outstanding PUBACKs on SIGTERM


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


def backoff_delay(attempt: int, initial: float, cap: float, rng: random.Random) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(cap, initial * 2**attempt)]."""
    return rng.uniform(0.0, min(cap, initial * (2 ** min(attempt, 32))))


class Uplink(threading.Thread):
    """Moves rows from the store to the broker until `stop` is set."""

    def __init__(
        self,
        mqtt_cfg: MqttConfig,
        device: DeviceConfig,
        sealer: Sealer,
        on_acked: Callable[[list[int]], None],
        stop: threading.Event,
    ) -> None:
        super().__init__(name="uplink", daemon=True)
        self.cfg = mqtt_cfg
        self.device = device
        self.sealer = sealer
        self.on_acked = on_acked
        self.stop = stop
        self.topics = Topics.for_device(mqtt_cfg.topic_prefix, device.site, device.id)
        self.wake = threading.Event()
        self.connected = threading.Event()
        self.connect_attempts = 0
        self._rng = random.Random()
        self._acked_mids: collections.deque[int] = collections.deque()
        self._forgotten: collections.deque[list[int]] = collections.deque()
        self._lost = threading.Event()
        self._connack: threading.Event = threading.Event()
        self._connack_rc: ReasonCode | None = None
        self._receive_max: int | None = None
        self._finished = threading.Event()

    # --- called from other threads -------------------------------------------------------

    def notify(self) -> None:
        """New rows were committed: wake the drain loop."""
        self.wake.set()

    def marked(self, rids: list[int]) -> None:
        """The daemon committed `sent` for these rows; they no longer need skipping."""
        self._forgotten.append(rids)

    def finish(self, timeout: float) -> None:
        """Wait for the uplink thread to end after `stop` was set."""
        self.wake.set()
        self._finished.wait(timeout)

    # --- paho callbacks (paho's thread): record and wake, nothing more --------------------

    def _on_connect(
        self, client: mqtt.Client, userdata: object, flags: object, rc: ReasonCode, props: Any
    ) -> None:
        self._connack_rc = rc
        rm = getattr(props, "ReceiveMaximum", None) if props is not None else None
        self._receive_max = rm if isinstance(rm, int) else None
        self._connack.set()

    def _on_disconnect(
        self, client: mqtt.Client, userdata: object, flags: object, rc: ReasonCode, props: Any
    ) -> None:
        self._lost.set()
        self._connack.set()
        self.wake.set()

    def _on_publish(
        self, client: mqtt.Client, userdata: object, mid: int, rc: ReasonCode, props: Any
    ) -> None:
        self._acked_mids.append(mid)
        self.wake.set()

    # --- the uplink thread ----------------------------------------------------------------

    def run(self) -> None:
        reader = OutboxReader(self.device.data_dir, self.sealer)
        attempt = 0
        try:
            while not self.stop.is_set():
                client = self._connect()
                if client is None:
                    delay = backoff_delay(
                        attempt, self.cfg.backoff_initial, self.cfg.backoff_max, self._rng
                    )
                    attempt += 1
                    self.stop.wait(delay)
                    continue
                attempt = 0
                try:
                    self._session(client, reader)
                finally:
                    self.connected.clear()
                    self._close(client)
                if not self.stop.is_set():
                    # The link dropped: back off once before reconnecting, so a broker that
                    # accepts and immediately drops connections does not get hammered.
                    self.stop.wait(
                        backoff_delay(0, self.cfg.backoff_initial, self.cfg.backoff_max, self._rng)
                    )
        except Exception:
            log.exception("uplink: unexpected failure; the daemon keeps buffering")
        finally:
            reader.close()
            self._finished.set()

    def _new_client(self) -> mqtt.Client:
        v5 = self.cfg.protocol == "5"
        client_id = self.cfg.client_id or f"tracescan-{self.device.site}-{self.device.id}"
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            clean_session=None if v5 else True,
            reconnect_on_failure=False,
        )
        client.max_inflight_messages_set(self.cfg.inflight)
        client.will_set(self.topics.status, b'{"online":false}', qos=1, retain=True)
        if self.cfg.ca_file or self.cfg.cert_file:
            ctx = ssl.create_default_context(
                cafile=str(self.cfg.ca_file) if self.cfg.ca_file else None
            )
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            if self.cfg.cert_file and self.cfg.key_file:
                ctx.load_cert_chain(str(self.cfg.cert_file), str(self.cfg.key_file))
            client.tls_set_context(ctx)
        if self.cfg.username:
            client.username_pw_set(self.cfg.username, self.cfg.password or None)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.connect_timeout = 5.0
        return client

    def _connect(self) -> mqtt.Client | None:
        self.connect_attempts += 1
        self._reset_connection_state()
        client = self._new_client()
        try:
            if self.cfg.protocol == "5":
                client.connect(self.cfg.host, self.cfg.port, self.cfg.keepalive, clean_start=True)
            else:
                client.connect(self.cfg.host, self.cfg.port, self.cfg.keepalive)
        except (OSError, ssl.SSLError) as exc:
            log.info("uplink: cannot reach broker %s:%d (%s)", self.cfg.host, self.cfg.port, exc)
            return None
        client.loop_start()
        if not self._connack.wait(_CONNACK_TIMEOUT) or self._lost.is_set():
            log.info(
                "uplink: broker %s:%d did not accept the connection", self.cfg.host, self.cfg.port
            )
            self._close(client)
            return None
        if self._connack_rc is None or self._connack_rc.is_failure:
            log.warning("uplink: broker refused the connection: %s", self._connack_rc)
            self._close(client)
            return None
        self.connected.set()
        log.info("uplink: connected to %s:%d", self.cfg.host, self.cfg.port)
        return client

    def _reset_connection_state(self) -> None:
        self._lost.clear()
        self._connack.clear()
        self._connack_rc = None
        self._acked_mids.clear()

    def _close(self, client: mqtt.Client) -> None:
        try:
            client.disconnect()
        except Exception:
            log.debug("uplink: disconnect failed", exc_info=True)
        client.loop_stop()

    def _status(self, reader: OutboxReader, *, online: bool) -> bytes:
        if not online:
            return b'{"online":false}'
        depth = reader.depth()
        now = time.time()
        status = {
            "online": True,
            "device": self.device.id,
            "site": self.device.site,
            "ts": rfc3339(now),
            "buffer_depth": depth.unsent,
            "oldest_unsent_s": round(now - depth.oldest_created, 3) if depth.oldest_created else 0,
        }
        return json.dumps(status, separators=(",", ":")).encode()

    def _session(self, client: mqtt.Client, reader: OutboxReader) -> None:
        """Drain the outbox over one connection until it drops or `stop` is set."""
        window = min(self.cfg.inflight, self._receive_max or self.cfg.inflight)
        client.publish(self.topics.status, self._status(reader, online=True), qos=1, retain=True)
        inflight: dict[int, int] = {}  # mid -> rid
        acked: set[int] = set()  # acknowledged, not yet marked sent by the daemon
        cursor = 0
        stopping_since: float | None = None
        while not self._lost.is_set():
            while self._forgotten:
                acked.difference_update(self._forgotten.popleft())
            done: list[int] = []
            while self._acked_mids:
                rid = inflight.pop(self._acked_mids.popleft(), None)
                if rid is not None:
                    done.append(rid)
            if done:
                acked.update(done)
                self.on_acked(done)
            if self.stop.is_set():
                stopping_since = stopping_since or time.monotonic()
                if not inflight or time.monotonic() - stopping_since > _STOP_GRACE:
                    self._goodbye(client, reader)
                    return
            elif len(inflight) < window:
                for row in reader.unsent(cursor, window - len(inflight) + len(acked)):
                    if len(inflight) >= window:
                        break
                    cursor = row.rid
                    if row.rid in acked:
                        continue
                    topic = self.topics.event if row.topic == "event" else self.topics.reject
                    info = client.publish(topic, row.payload, qos=1)
                    if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                        log.info(
                            "uplink: publish failed (%s); reconnecting", mqtt.error_string(info.rc)
                        )
                        return
                    inflight[info.mid] = row.rid
            self.wake.wait(0.5)
            self.wake.clear()

    def _goodbye(self, client: mqtt.Client, reader: OutboxReader) -> None:
        """Clean shutdown: say offline (the will only fires on an unclean loss)."""
        info = client.publish(
            self.topics.status, self._status(reader, online=False), qos=1, retain=True
        )
        try:
            info.wait_for_publish(1.0)
        except (RuntimeError, ValueError):
            log.debug("uplink: offline status not confirmed")
