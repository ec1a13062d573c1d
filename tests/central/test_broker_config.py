"""The shipped central broker config (config/mosquitto/central.conf + acl) with the ledger:
mutual TLS, a ledger certificate per consumer, client ids no device certificate can take."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from agent.uplink import pki
from central import ledger
from central.config import load
from hardware_sim.broker import LocalBroker
from tests.central.conftest import LedgerThread, TestDevice, enroll, progress, write_config
from tests.harness import wait_until
from tests.uplink.conftest import Pki, central_extra, tls_context


@pytest.fixture
def central_pki(tmp_path: Path) -> Pki:
    """CA, broker certificate, and the certificates `tracescan pki` would make."""
    return Pki(tmp_path / "pki")


@pytest.fixture
def shipped_broker(tmp_path: Path, central_pki: Pki) -> Iterator[LocalBroker]:
    """mosquitto running the shipped central.conf and acl (TLS listener on a free port)."""
    workdir = tmp_path / "broker"
    workdir.mkdir()
    b = LocalBroker(workdir=workdir, persistence=True, extra=central_extra(central_pki.dir)).start()
    yield b
    b.close()


class DeviceLink:
    """A device certificate's raw MQTT client, asking for a client id of its choice."""

    def __init__(self, port: int, test_pki: Pki, device: str, client_id: str) -> None:
        issued = test_pki.device(device)
        self.got: list[mqtt.MQTTMessage] = []
        self.connected = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        self.client.tls_set_context(tls_context(test_pki.ca, issued.cert, issued.key))
        self.client.on_connect = lambda c, u, f, rc, p: self.connected.set()
        self.client.on_message = lambda c, u, m: self.got.append(m)
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.loop_start()
        assert self.connected.wait(10)

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()


def _ledger(tmp_path: Path, dsn: str, port: int, test_pki: Pki, name: str) -> LedgerThread:
    issued = pki.issue_client(test_pki.dir, name)
    cfg = write_config(
        tmp_path / name,
        dsn,
        port,
        ca_file=str(test_pki.ca),
        cert_file=str(issued.cert),
        key_file=str(issued.key),
    )
    return LedgerThread(load(cfg)).start()


def test_ledger_consumers_with_their_own_certificates_ingest_and_ack_over_mutual_tls(
    tmp_path: Path, dsn: str, db: ledger.Connection, shipped_broker: LocalBroker, central_pki: Pki
) -> None:
    dev = TestDevice("dev-a")
    enroll(db, dev)
    one = _ledger(tmp_path, dsn, shipped_broker.port, central_pki, "ledger-1")
    two = _ledger(tmp_path, dsn, shipped_broker.port, central_pki, "ledger-2")
    device = DeviceLink(shipped_broker.port, central_pki, "dev-a", f"any-{uuid.uuid4().hex[:6]}")
    try:
        device.client.subscribe(f"tracescan/v1/{dev.site}/dev-a/cmd/#", qos=1)
        time.sleep(0.3)
        for payload in dev.events(40):
            device.client.publish(dev.topic(), payload, qos=1).wait_for_publish(10)
        assert wait_until(lambda: progress(db, dev) == (40, 40))
        assert wait_until(
            lambda: any(
                json.loads(m.payload)["through"] == 40
                for m in device.got
                if m.topic.endswith("/ack")
            )
        )
        assert one.consumer.stored.events > 0
        assert two.consumer.stored.events > 0
    finally:
        device.close()
        one.stop()
        two.stop()


def test_a_device_certificate_cannot_take_a_ledger_consumers_session(
    tmp_path: Path, dsn: str, db: ledger.Connection, shipped_broker: LocalBroker, central_pki: Pki
) -> None:
    dev = TestDevice("dev-a")
    enroll(db, dev)
    run = _ledger(tmp_path, dsn, shipped_broker.port, central_pki, "ledger-1")
    drops: list[float] = []
    assert run.consumer._client is not None
    run.consumer._client.on_disconnect = lambda *a: drops.append(time.monotonic())
    # A device asks for the ledger's client ids (its CN, and the one it asks for itself); the
    # broker makes the device's id its own CN (site/device), so no session is taken over.
    thieves = [
        DeviceLink(shipped_broker.port, central_pki, device, wanted)
        for device, wanted in (("dev-a", "ledger-1"), ("dev-b", run.consumer.client_id))
    ]
    try:
        for payload in dev.events(10):
            thieves[0].client.publish(dev.topic(), payload, qos=1).wait_for_publish(10)
        assert wait_until(lambda: progress(db, dev) == (10, 10))
        assert drops == []  # the ledger was never kicked off
        assert run.consumer.connected.is_set()
    finally:
        for thief in thieves:
            thief.close()
        run.stop()
