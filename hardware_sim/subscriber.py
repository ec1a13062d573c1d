"""A plain paho subscriber that records everything a device publishes (tests and the demo)."""

from __future__ import annotations

import ssl
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties


@dataclass(frozen=True, slots=True)
class Received:
    """One message as it arrived."""

    topic: str
    payload: bytes
    retain: bool


class Recorder:
    """Subscribes to `pattern` at QoS 1 and keeps every message in arrival order."""

    def __init__(
        self,
        host: str,
        port: int,
        pattern: str,
        on_message: Callable[[Received], None] | None = None,
        *,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.messages: list[Received] = []
        self._cond = threading.Condition()
        self._callback = on_message
        self._subscribed = threading.Event()
        # A persistent session that reconnects by itself: with a persistent broker, nothing
        # published while this recorder was cut off (e.g. across a broker restart) is missed.
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"recorder-{uuid.uuid4().hex[:12]}",
            protocol=mqtt.MQTTv5,
        )
        if tls is not None:
            self.client.tls_set_context(tls)
        self.client.reconnect_delay_set(0.05, 0.5)  # type: ignore[arg-type]  # floats work; stubs say int
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(pattern, qos=1)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self._subscribed.set()
        self.client.on_message = self._on_message
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 3600
        self.client.connect(host, port, keepalive=30, clean_start=False, properties=props)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            self.close()
            raise TimeoutError("subscription not confirmed")

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        rec = Received(msg.topic, bytes(msg.payload), bool(msg.retain))
        with self._cond:
            self.messages.append(rec)
            self._cond.notify_all()
        if self._callback:
            self._callback(rec)

    def on(self, suffix: str) -> list[Received]:
        """Messages whose topic ends with `/suffix`."""
        with self._cond:
            return [m for m in self.messages if m.topic.endswith("/" + suffix)]

    def wait_for(self, predicate: Callable[[Recorder], bool], timeout: float = 20.0) -> bool:
        """Wait until `predicate(self)` holds; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.2))
        return True

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()
