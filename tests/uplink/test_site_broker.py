"""The shipped site broker (`config/mosquitto/bridge-site.conf`): LAN devices authenticate as at
the central broker, and the bridge carries their streams up and their master data down."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from hardware_sim.broker import LocalBroker
from hardware_sim.workload import unit_codes
from tests.uplink.conftest import (
    ACL,
    REPO,
    SHIPPED_PKI_DIR,
    SITE,
    CertClient,
    Driven,
    Pki,
    TlsRecorder,
    agent_config,
    connects,
    events_by_seq,
)

BRIDGE_CONF = REPO / "config" / "mosquitto" / "bridge-site.conf"


def _bridge_extra(central_port: int, pki_dir: Path) -> str:
    """The shipped site-bridge example, pointed at the test's central broker and PKI.

    LocalBroker's own listener (loopback, free port) comes first, so the shipped LAN
    listener's settings apply to it; the ACL is the shipped file itself.
    """
    keep = []
    for line in BRIDGE_CONF.read_text().splitlines():
        word = line.split(" ", 1)[0]
        if word in {"listener", "persistence", "persistence_location"}:
            continue
        if word == "acl_file":
            keep.append(f"acl_file {ACL}")
            continue
        pointed = line.replace("central.example.net:8883", f"127.0.0.1:{central_port}")
        keep.append(pointed.replace(SHIPPED_PKI_DIR, f"{pki_dir}/"))
    return "\n".join(keep)


@pytest.fixture
def site_broker(tls_broker: LocalBroker, test_pki: Pki) -> Iterator[LocalBroker]:
    """The site broker on the LAN, bridged to the test's central broker."""
    test_pki.site(SITE)
    with LocalBroker(extra=_bridge_extra(tls_broker.port, test_pki.dir)) as b:
        yield b


def test_site_bridge_forwards_its_devices_to_the_central_broker(
    tmp_path: Path,
    site_broker: LocalBroker,
    test_pki: Pki,
    backend: TlsRecorder,
    driven: Driven,
) -> None:
    # A LAN device uses its own certificate, exactly as it would with the central broker.
    tls = test_pki.mqtt_tls(test_pki.device("dev-a"))
    agent = driven(agent_config(tmp_path / "a", site_broker.port, **tls))
    agent.feed(unit_codes(30))
    assert backend.wait_for(lambda r: len(events_by_seq(r.messages)) == 30)
    agent.close()
    assert sorted(events_by_seq(backend.messages)) == list(range(1, 31))
    assert {m.topic for m in backend.on("event")} == {f"tracescan/v1/{SITE}/dev-a/event"}


def test_an_anonymous_lan_client_cannot_connect_to_the_site_broker(
    site_broker: LocalBroker, test_pki: Pki
) -> None:
    assert not connects(site_broker.port, None)  # plain MQTT, as the old example allowed
    server_only = ssl.create_default_context(cafile=str(test_pki.ca))  # TLS, no certificate
    assert not connects(site_broker.port, server_only)


def test_lan_devices_have_the_central_acl_at_the_site_broker(
    site_broker: LocalBroker, test_pki: Pki, backend: TlsRecorder
) -> None:
    device = CertClient(site_broker.port, test_pki, "dev-a")
    own = f"tracescan/v1/{SITE}/dev-a"
    try:
        refused = [
            device.publish(topic, b'{"version":99}', retain=True)
            for topic in (
                f"tracescan/v1/{SITE}/dev-b/event",
                f"{own}/master/blocklist",
                f"{own}/cmd/ack",
                f"tracescan/v1/{SITE}/master/catalog",
            )
        ]
        sent = device.publish(f"{own}/event", b'{"seq":1}')
    finally:
        device.close()
    assert [rc.value for rc in refused] == [0x87] * 4
    assert not sent.is_failure
    assert backend.wait_for(lambda r: len(r.on("event")) == 1)
    assert [m.topic for m in backend.messages] == [f"{own}/event"]


def test_master_data_reaches_lan_devices_through_the_bridge(
    site_broker: LocalBroker, test_pki: Pki, backend: TlsRecorder
) -> None:
    # Retained at the central broker, per device and site-wide: the bridge subscribes to both
    # and the site broker keeps them for devices that connect later.
    wanted = [f"tracescan/v1/{SITE}/dev-a/master/blocklist", f"tracescan/v1/{SITE}/master/catalog"]
    for topic in wanted:
        backend.client.publish(topic, b'{"version":2}', qos=1, retain=True).wait_for_publish(10)
    got: list[str] = []
    arrived = threading.Condition()

    def on_message(c: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
        with arrived:
            got.append(msg.topic)
            arrived.notify_all()

    device = CertClient(site_broker.port, test_pki, "dev-a", on_message=on_message)
    try:
        # Retained copies reach the site broker once the bridge delivered them; a device that
        # subscribes before that gets them live.
        device.client.subscribe(
            [
                (f"tracescan/v1/{SITE}/dev-a/master/#", 1),
                (f"tracescan/v1/{SITE}/master/#", 1),
            ]
        )
        with arrived:
            assert arrived.wait_for(lambda: set(wanted) <= set(got), 20)
    finally:
        device.close()
