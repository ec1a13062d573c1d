"""The shipped central broker config: mutual TLS, identity from the CN, per-device ACL."""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path
from typing import TypedDict

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from agent.uplink import pki
from hardware_sim.broker import LocalBroker
from hardware_sim.workload import unit_codes
from tests.uplink.conftest import (
    REPO,
    SHIPPED_PKI_DIR,
    SITE,
    Driven,
    Pki,
    TlsRecorder,
    agent_config,
    events_by_seq,
    tls_context,
)


class DeviceTls(TypedDict):
    """The [mqtt] TLS keys of a device."""

    ca_file: Path
    cert_file: Path
    key_file: Path


def _device_tls(test_pki: Pki, device: str) -> DeviceTls:
    issued = test_pki.device(device)
    return {"ca_file": test_pki.ca, "cert_file": issued.cert, "key_file": issued.key}


def test_agent_delivers_over_mutual_tls_and_status_reports_the_backlog(
    tmp_path: Path, tls_broker: LocalBroker, test_pki: Pki, backend: TlsRecorder, driven: Driven
) -> None:
    cfg = agent_config(tmp_path / "a", tls_broker.port, **_device_tls(test_pki, "dev-a"))
    agent = driven(cfg)
    agent.feed(unit_codes(50))
    assert backend.wait_for(lambda r: len(events_by_seq(r.messages)) == 50)
    assert sorted(events_by_seq(backend.messages)) == list(range(1, 51))
    status = [json.loads(m.payload) for m in backend.on("status")]
    assert status[0]["online"] is True
    assert {"buffer_depth", "oldest_unsent_s"} <= status[0].keys()
    assert all(m.topic.startswith(f"tracescan/v1/{SITE}/dev-a/") for m in backend.messages)


def test_status_on_reconnect_carries_buffer_depth_and_oldest_unsent_age(
    tmp_path: Path, tls_broker: LocalBroker, test_pki: Pki, backend: TlsRecorder, driven: Driven
) -> None:
    # A wrong port first: scans pile up unsent; then the agent reaches the broker.
    home = tmp_path / "a"
    tls = _device_tls(test_pki, "dev-a")
    offline = driven(agent_config(home, 1, **tls))
    offline.feed(unit_codes(30))
    offline.close()
    agent = driven(agent_config(home, tls_broker.port, **tls))
    assert backend.wait_for(lambda r: len(events_by_seq(r.messages)) == 30)
    first = json.loads(backend.on("status")[0].payload)
    assert first["buffer_depth"] == 30
    assert first["oldest_unsent_s"] > 0
    assert agent.uplink.connect_attempts >= 1


def test_a_server_certificate_from_another_ca_is_refused(
    tmp_path: Path, tls_broker: LocalBroker, test_pki: Pki, backend: TlsRecorder, driven: Driven
) -> None:
    other = tmp_path / "other-ca"
    pki.create_ca(other, "someone else")
    issued = test_pki.device("dev-a")
    cfg = agent_config(
        tmp_path / "a",
        tls_broker.port,
        ca_file=other / "ca.crt",
        cert_file=issued.cert,
        key_file=issued.key,
    )
    agent = driven(cfg)
    agent.feed(unit_codes(5))
    # It keeps trying (and failing verification); nothing ever arrives.
    assert not agent.uplink.connected.wait(2.0)
    assert agent.uplink.connect_attempts >= 2
    assert backend.on("event") == []


def test_a_device_certificate_from_another_ca_is_refused_by_the_broker(
    tmp_path: Path, tls_broker: LocalBroker, test_pki: Pki, backend: TlsRecorder, driven: Driven
) -> None:
    rogue = tmp_path / "rogue"
    pki.create_ca(rogue, "rogue CA")
    forged = pki.issue_device(rogue, SITE, "dev-a")  # the right name, the wrong issuer
    cfg = agent_config(
        tmp_path / "a",
        tls_broker.port,
        ca_file=test_pki.ca,
        cert_file=forged.cert,
        key_file=forged.key,
    )
    agent = driven(cfg)
    agent.feed(unit_codes(5))
    assert not agent.uplink.connected.wait(2.0)
    assert agent.uplink.connect_attempts >= 2
    assert backend.on("event") == []


def test_without_a_client_certificate_the_broker_refuses(
    tmp_path: Path, tls_broker: LocalBroker, test_pki: Pki, driven: Driven
) -> None:
    agent = driven(agent_config(tmp_path / "a", tls_broker.port, ca_file=test_pki.ca))
    assert not agent.uplink.connected.wait(2.0)
    assert agent.uplink.connect_attempts >= 2


class _DeviceClient:
    """A bare paho client holding one device's certificate: what a tampered device could do."""

    def __init__(
        self, port: int, test_pki: Pki, device: str, issued: pki.Issued | None = None
    ) -> None:
        issued = issued or test_pki.device(device)
        self.acks: dict[int, ReasonCode] = {}
        self._acked = threading.Condition()
        connected = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"rogue-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        self.client.tls_set_context(tls_context(test_pki.ca, issued.cert, issued.key))
        self.client.on_connect = lambda c, u, f, rc, p: connected.set()
        self.client.on_publish = self._on_publish
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.loop_start()
        assert connected.wait(10)

    def _on_publish(self, c: mqtt.Client, u: object, mid: int, rc: ReasonCode, p: object) -> None:
        with self._acked:
            self.acks[mid] = rc
            self._acked.notify_all()

    def publish(self, topic: str, payload: bytes) -> ReasonCode:
        """QoS 1 publish; the PUBACK's reason code."""
        mid = self.client.publish(topic, payload, qos=1).mid
        with self._acked:
            assert self._acked.wait_for(lambda: mid in self.acks, 10)
            return self.acks[mid]

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()


def test_a_device_cannot_publish_under_another_devices_topic(
    tls_broker: LocalBroker, test_pki: Pki, backend: TlsRecorder
) -> None:
    rogue = _DeviceClient(tls_broker.port, test_pki, "dev-a")
    try:
        denied = rogue.publish(f"tracescan/v1/{SITE}/dev-b/event", b'{"seq":1,"forged":true}')
        other_site = rogue.publish("tracescan/v1/site-02/dev-a/event", b'{"seq":1,"forged":true}')
        own = rogue.publish(f"tracescan/v1/{SITE}/dev-a/event", b'{"seq":1,"own":true}')
    finally:
        rogue.close()
    # MQTT 5 tells the publisher (0x87 Not authorized); QoS 1 from one client is delivered in
    # order, so once its own later message has arrived, the forged ones would have too.
    assert denied.value == 0x87
    assert other_site.value == 0x87
    assert not own.is_failure
    assert backend.wait_for(lambda r: len(r.on("event")) >= 1)
    assert [m.topic for m in backend.on("event")] == [f"tracescan/v1/{SITE}/dev-a/event"]


def test_a_device_receives_only_its_own_commands(
    tls_broker: LocalBroker, test_pki: Pki, backend: TlsRecorder
) -> None:
    rogue = _DeviceClient(tls_broker.port, test_pki, "dev-a")
    got: list[str] = []
    own_arrived = threading.Event()
    subscribed = threading.Event()

    def on_message(c: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
        got.append(msg.topic)
        if msg.topic.endswith("dev-a/cmd/op"):
            own_arrived.set()

    rogue.client.on_message = on_message
    rogue.client.on_subscribe = lambda c, u, mid, rcs, p: subscribed.set()
    try:
        # mosquitto 2.0 grants the subscription and filters at delivery: the ACL decides what
        # actually arrives.
        rogue.client.subscribe(
            [
                (f"tracescan/v1/{SITE}/dev-a/cmd/#", 1),
                (f"tracescan/v1/{SITE}/dev-b/cmd/#", 1),
                (f"tracescan/v1/{SITE}/dev-b/event", 1),
            ]
        )
        assert subscribed.wait(10)
        send = backend.client.publish
        send(f"tracescan/v1/{SITE}/dev-b/cmd/op", b"dev-b only", qos=1).wait_for_publish(10)
        send(f"tracescan/v1/{SITE}/dev-b/event", b"dev-b event", qos=1).wait_for_publish(10)
        send(f"tracescan/v1/{SITE}/dev-a/cmd/op", b"dev-a", qos=1).wait_for_publish(10)
        assert own_arrived.wait(10)
    finally:
        rogue.close()
    assert got == [f"tracescan/v1/{SITE}/dev-a/cmd/op"]


BRIDGE_CONF = REPO / "config" / "mosquitto" / "bridge-site.conf"


def _bridge_extra(central_port: int, pki_dir: Path) -> str:
    """The shipped site-bridge example, pointed at the test's central broker and PKI."""
    keep = []
    for line in BRIDGE_CONF.read_text().splitlines():
        if line.split(" ", 1)[0] in {"listener", "persistence", "persistence_location"}:
            continue
        pointed = line.replace("central.example.net:8883", f"127.0.0.1:{central_port}")
        keep.append(pointed.replace(SHIPPED_PKI_DIR, f"{pki_dir}/"))
    return "\n".join(keep)


def test_site_bridge_forwards_its_devices_to_the_central_broker(
    tmp_path: Path, tls_broker: LocalBroker, test_pki: Pki, backend: TlsRecorder, driven: Driven
) -> None:
    pki.issue_client(test_pki.dir, SITE)  # the bridge's certificate: CN = the site
    with LocalBroker(extra=_bridge_extra(tls_broker.port, test_pki.dir)) as site_broker:
        # Devices on the LAN talk plain MQTT to the site broker; the bridge does the mTLS.
        agent = driven(agent_config(tmp_path / "a", site_broker.port))
        agent.feed(unit_codes(30))
        assert backend.wait_for(lambda r: len(events_by_seq(r.messages)) == 30)
        agent.close()
    assert sorted(events_by_seq(backend.messages)) == list(range(1, 31))
    assert {m.topic for m in backend.on("event")} == {f"tracescan/v1/{SITE}/dev-a/event"}


def test_a_site_bridge_certificate_cannot_write_for_another_site(
    tls_broker: LocalBroker, test_pki: Pki, backend: TlsRecorder
) -> None:
    bridge = _DeviceClient(tls_broker.port, test_pki, "", pki.issue_client(test_pki.dir, SITE))
    try:
        other = bridge.publish("tracescan/v1/site-02/dev-x/event", b'{"seq":1}')
        own = bridge.publish(f"tracescan/v1/{SITE}/dev-x/event", b'{"seq":1}')
    finally:
        bridge.close()
    assert other.value == 0x87
    assert not own.is_failure
    assert backend.wait_for(lambda r: len(r.on("event")) >= 1)
    assert [m.topic for m in backend.on("event")] == [f"tracescan/v1/{SITE}/dev-x/event"]
