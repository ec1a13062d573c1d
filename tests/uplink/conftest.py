"""Real parts for the uplink tests: an in-process agent, a PKI, a TLS broker, subscribers."""

from __future__ import annotations

import json
import ssl
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypedDict

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.client import ConnectFlags
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from agent.config import Config, load
from agent.uplink import pki
from hardware_sim.broker import LocalBroker
from hardware_sim.subscriber import Received, Recorder
from tests.harness import InProcessAgent, config_file

REPO = Path(__file__).resolve().parents[2]
CENTRAL_CONF = REPO / "config" / "mosquitto" / "central.conf"
ACL = REPO / "config" / "mosquitto" / "acl"
SHIPPED_PKI_DIR = "/etc/mosquitto/tracescan/"
SITE = "site-01"


def agent_config(home: Path, port: int, *, site: str = SITE, **mqtt: object) -> Config:
    """The harness's config for device `dev-a` (or `mqtt["device"]`) under `home` on broker
    `port`; the other `mqtt` keys override the [mqtt] section."""
    device = str(mqtt.pop("device", "dev-a"))
    return load(config_file(home, mqtt_port=port, device_id=device, site=site, mqtt=mqtt))


#: The `driven` fixture: start an in-process agent (writer thread and uplink) for a config.
Driven = Callable[[Config], InProcessAgent]


@pytest.fixture
def driven() -> Iterator[Driven]:
    """Start in-process agents with a writer thread and the uplink; all stop at the end."""
    made: list[InProcessAgent] = []

    def make(config: Config) -> InProcessAgent:
        d = InProcessAgent(config, threaded=True).start()
        made.append(d)
        return d

    yield make
    for d in made:
        d.close()


def events_by_seq(messages: list[Received]) -> dict[int, bytes]:
    """seq -> payload after dropping byte-identical duplicates; a conflicting duplicate fails."""
    seen: dict[int, bytes] = {}
    for m in messages:
        if not m.topic.endswith("/event"):
            continue
        seq = json.loads(m.payload)["seq"]
        if seq in seen:
            assert seen[seq] == m.payload, f"seq {seq} re-sent with different content"
        seen[seq] = m.payload
    return seen


# --- PKI and the central broker --------------------------------------------------------------


class DeviceTls(TypedDict):
    """The [mqtt] TLS keys of a device."""

    ca_file: Path
    cert_file: Path
    key_file: Path


class Pki:
    """A CA with a broker certificate, device certificates on demand and a backend client."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        pki.create_ca(directory, "test CA")
        pki.issue_broker(directory)
        self.backend = pki.issue_client(directory, "backend")

    @property
    def ca(self) -> Path:
        """The CA certificate."""
        return self.dir / "ca.crt"

    def device(self, device: str, site: str = SITE) -> pki.Issued:
        """A device certificate (CN = site/device)."""
        return pki.issue_device(self.dir, site, device)

    def mqtt_tls(self, issued: pki.Issued) -> DeviceTls:
        """The [mqtt] keys with which a device uses `issued` (and trusts this CA)."""
        return {"ca_file": self.ca, "cert_file": issued.cert, "key_file": issued.key}

    def site(self, site: str = SITE) -> pki.Issued:
        """A site broker's certificates: its bridge's client certificate (CN = the site), and
        its server certificate for the LAN listener, which it returns."""
        pki.issue_client(self.dir, site)
        return pki.issue_broker(self.dir, site=site)


@pytest.fixture
def test_pki(tmp_path: Path) -> Pki:
    """A fresh PKI made with `agent.uplink.pki`, as `tracescan pki` would."""
    return Pki(tmp_path / "pki")


def central_extra(pki_dir: Path) -> str:
    """`config/mosquitto/central.conf` as LocalBroker extra lines: the shipped TLS and ACL settings.

    LocalBroker writes its own `listener` (loopback, free port) and persistence lines first; the
    shipped listener settings that follow apply to it. Paths point at the test's PKI; the ACL
    is the shipped file itself.
    """
    keep: list[str] = []
    for line in CENTRAL_CONF.read_text().splitlines():
        word = line.split(" ", 1)[0]
        if word in {"listener", "persistence", "persistence_location", "autosave_interval"}:
            continue
        if word == "acl_file":
            keep.append(f"acl_file {ACL}")
            continue
        keep.append(line.replace(SHIPPED_PKI_DIR, f"{pki_dir}/"))
    return "\n".join(keep)


@pytest.fixture
def tls_broker(tmp_path: Path, test_pki: Pki) -> Iterator[LocalBroker]:
    """mosquitto configured as the shipped central broker (mTLS, identity from CN, ACL)."""
    workdir = tmp_path / "broker"
    workdir.mkdir()
    b = LocalBroker(workdir=workdir, persistence=True, extra=central_extra(test_pki.dir)).start()
    yield b
    b.close()


def tls_context(ca: Path, cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
    """A client TLS context as the agent builds it."""
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert and key:
        ctx.load_cert_chain(str(cert), str(key))
    return ctx


class TlsRecorder(Recorder):
    """A backend subscriber over mutual TLS (the `backend` certificate); records in order."""

    def __init__(self, port: int, pki_: Pki, pattern: str = "tracescan/v1/#") -> None:
        ctx = tls_context(pki_.ca, pki_.backend.cert, pki_.backend.key)
        super().__init__("127.0.0.1", port, pattern, tls=ctx)


def connects(port: int, tls: ssl.SSLContext | None) -> bool:
    """Whether a client with this TLS context (None: plain MQTT) gets a successful CONNACK."""
    answered = threading.Event()
    accepted: list[bool] = []
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"probe-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv5
    )
    if tls is not None:
        client.tls_set_context(tls)

    def on_connect(c: mqtt.Client, u: object, f: object, rc: ReasonCode, p: object) -> None:
        accepted.append(not rc.is_failure)
        answered.set()

    client.on_connect = on_connect
    client.on_disconnect = lambda c, u, f, rc, p: answered.set()
    try:
        client.connect("127.0.0.1", port, keepalive=30)
    except (OSError, ssl.SSLError):
        return False
    client.loop_start()
    try:
        assert answered.wait(10)
    finally:
        client.disconnect()
        client.loop_stop()
    return accepted == [True]


class CertClient:
    """A bare paho client holding one certificate: what a tampered device (or a stolen key) does.

    Connects to `port` on loopback with `issued` (default: a new certificate for `device`).

    `client_id` is what it asks for (the broker may replace it); `persistent` asks for a session
    that outlives the connection. Disconnections are recorded with their reason code.
    """

    def __init__(
        self,
        port: int,
        test_pki: Pki,
        device: str,
        issued: pki.Issued | None = None,
        *,
        client_id: str | None = None,
        persistent: bool = False,
        on_message: Callable[[mqtt.Client, object, mqtt.MQTTMessage], None] | None = None,
    ) -> None:
        issued = issued or test_pki.device(device)
        self.acks: dict[int, ReasonCode] = {}
        self.disconnects: list[ReasonCode] = []
        self.session_present: bool | None = None
        self._acked = threading.Condition()
        connected = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"rogue-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        self.client.tls_set_context(tls_context(test_pki.ca, issued.cert, issued.key))

        def on_connect(
            c: mqtt.Client, u: object, flags: ConnectFlags, rc: ReasonCode, p: object
        ) -> None:
            self.session_present = flags.session_present
            connected.set()

        self.client.on_connect = on_connect
        self.client.on_disconnect = lambda c, u, f, rc, p: self.disconnects.append(rc)
        self.client.on_publish = self._on_publish
        if on_message is not None:  # before CONNECT: a resumed session delivers at once
            self.client.on_message = on_message
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 3600 if persistent else 0
        self.client.connect(
            "127.0.0.1", port, keepalive=30, clean_start=not persistent, properties=props
        )
        self.client.loop_start()
        assert connected.wait(10)

    def _on_publish(self, c: mqtt.Client, u: object, mid: int, rc: ReasonCode, p: object) -> None:
        with self._acked:
            self.acks[mid] = rc
            self._acked.notify_all()

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> ReasonCode:
        """QoS 1 publish; the PUBACK's reason code."""
        mid = self.client.publish(topic, payload, qos=1, retain=retain).mid
        with self._acked:
            assert self._acked.wait_for(lambda: mid in self.acks, 10)
            return self.acks[mid]

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def backend(tls_broker: LocalBroker, test_pki: Pki) -> Iterator[TlsRecorder]:
    """The backend consumer, subscribed to every device over mTLS."""
    r = TlsRecorder(tls_broker.port, test_pki)
    yield r
    r.close()


@pytest.fixture
def plain_recorder(broker: LocalBroker) -> Iterator[Recorder]:
    """A subscriber on the plain test broker (the shared `broker` fixture)."""
    r = Recorder("127.0.0.1", broker.port, "tracescan/v1/#")
    yield r
    r.close()
