"""The shipped central broker config: mutual TLS, identity from the CN, per-device ACL."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from agent.cli import main
from agent.uplink import pki
from hardware_sim.broker import LocalBroker
from hardware_sim.workload import unit_codes
from tests.uplink.conftest import (
    SITE,
    CertClient,
    Driven,
    Pki,
    TlsRecorder,
    agent_config,
    connects,
    events_by_seq,
    tls_context,
)


def test_agent_delivers_over_mutual_tls_and_status_reports_the_backlog(
    tmp_path: Path, tls_broker: LocalBroker, test_pki: Pki, backend: TlsRecorder, driven: Driven
) -> None:
    cfg = agent_config(
        tmp_path / "a", tls_broker.port, **test_pki.mqtt_tls(test_pki.device("dev-a"))
    )
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
    tls = test_pki.mqtt_tls(test_pki.device("dev-a"))
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


def test_a_device_cannot_publish_under_another_devices_topic(
    tls_broker: LocalBroker, test_pki: Pki, backend: TlsRecorder
) -> None:
    rogue = CertClient(tls_broker.port, test_pki, "dev-a")
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
    rogue = CertClient(tls_broker.port, test_pki, "dev-a")
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


def test_a_site_bridge_certificate_cannot_write_for_another_site(
    tls_broker: LocalBroker, test_pki: Pki, backend: TlsRecorder
) -> None:
    bridge = CertClient(tls_broker.port, test_pki, "", pki.issue_client(test_pki.dir, SITE))
    try:
        other = bridge.publish("tracescan/v1/site-02/dev-x/event", b'{"seq":1}')
        own = bridge.publish(f"tracescan/v1/{SITE}/dev-x/event", b'{"seq":1}')
    finally:
        bridge.close()
    assert other.value == 0x87
    assert not own.is_failure
    assert backend.wait_for(lambda r: len(r.on("event")) >= 1)
    assert [m.topic for m in backend.on("event")] == [f"tracescan/v1/{SITE}/dev-x/event"]


# --- Trust boundaries (issue 15): identity, least privilege --------------------------------


def test_no_certificate_can_take_over_the_backends_session(
    tls_broker: LocalBroker, test_pki: Pki
) -> None:
    # The backend keeps a persistent session: what arrives while it is away waits for it.
    holder = CertClient(
        tls_broker.port, test_pki, "", test_pki.backend, client_id="backend", persistent=True
    )
    subscribed = threading.Event()
    holder.client.on_subscribe = lambda c, u, mid, rcs, p: subscribed.set()
    holder.client.subscribe("tracescan/v1/#", qos=1)
    assert subscribed.wait(10)
    holder.close()
    device = CertClient(tls_broker.port, test_pki, "dev-a")
    try:
        assert not device.publish(f"tracescan/v1/{SITE}/dev-a/event", b'{"seq":1}').is_failure
    finally:
        device.close()
    # Another device's certificate asks for the backend's client id with a clean start: on a
    # broker that believes the client id, that discards the backend's session and its queue.
    rogue = CertClient(tls_broker.port, test_pki, "dev-b", client_id="backend")
    rogue.close()
    got: list[str] = []
    arrived = threading.Event()

    def on_message(c: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
        got.append(msg.topic)
        arrived.set()

    holder = CertClient(
        tls_broker.port,
        test_pki,
        "",
        test_pki.backend,
        client_id="backend",
        persistent=True,
        on_message=on_message,
    )
    try:
        assert holder.session_present is True
        assert arrived.wait(10)
    finally:
        holder.close()
    assert got == [f"tracescan/v1/{SITE}/dev-a/event"]


def test_another_sites_certificate_cannot_push_a_device_off_the_broker(
    tls_broker: LocalBroker, test_pki: Pki
) -> None:
    device = CertClient(tls_broker.port, test_pki, "dev-a", client_id="station")
    try:
        # Same client id, another site's certificate: a broker that believes the client id
        # disconnects the device ("session taken over") before it answers the intruder.
        intruder = CertClient(
            tls_broker.port,
            test_pki,
            "",
            test_pki.device("dev-z", site="site-02"),
            client_id="station",
        )
        intruder.close()
        # Had the device been pushed off, this PUBACK could only come after a reconnect, and
        # the disconnection would be recorded before it.
        assert not device.publish(f"tracescan/v1/{SITE}/dev-a/event", b'{"seq":1}').is_failure
        assert device.disconnects == []
    finally:
        device.close()


def test_a_device_cannot_write_its_own_commands_or_master_data(
    tls_broker: LocalBroker, test_pki: Pki, backend: TlsRecorder
) -> None:
    device = CertClient(tls_broker.port, test_pki, "dev-a")
    own = f"tracescan/v1/{SITE}/dev-a"
    forged = [
        f"{own}/cmd/ack",
        f"{own}/cmd/resend",
        f"{own}/master/blocklist",
        f"{own}/master/manifest/PO-1",
        f"tracescan/v1/{SITE}/master/catalog",  # the site-wide master data
        f"{own}/anything/else",
    ]
    try:
        refused = {topic: device.publish(topic, b'{"version":99}', retain=True) for topic in forged}
        streams = {
            leaf: device.publish(f"{own}/{leaf}", b"{}")
            for leaf in ("event", "reject", "alert", "report", "status")
        }
    finally:
        device.close()
    assert {t: rc.value for t, rc in refused.items()} == dict.fromkeys(forged, 0x87)
    assert not any(rc.is_failure for rc in streams.values())
    assert backend.wait_for(lambda r: len(r.on("status")) >= 1)
    assert not [m.topic for m in backend.messages if "/cmd/" in m.topic or "/master/" in m.topic]


def _certificate_for(test_pki: Pki, common_name: str) -> pki.Issued:
    """A client certificate with any CN, signed by the test CA: what an older `tracescan pki`
    (or openssl by hand) could issue before reserved names were refused."""
    ca = pki.load_ca(test_pki.dir)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(ca.key, hashes.SHA256())
    )
    base = test_pki.dir / "legacy" / common_name.replace("/", "_")
    base.parent.mkdir(exist_ok=True)
    files = pki.Issued(base.with_suffix(".crt"), base.with_suffix(".key"))
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files


def test_a_device_named_master_cannot_write_the_site_wide_master_data(
    tls_broker: LocalBroker, test_pki: Pki, backend: TlsRecorder
) -> None:
    # `tracescan pki device --device master` is refused now (test_pki.py); a certificate made
    # before that still only gets a device's streams, which are not master data kinds.
    master = CertClient(tls_broker.port, test_pki, "", _certificate_for(test_pki, f"{SITE}/master"))
    try:
        refused = [
            master.publish(f"tracescan/v1/{SITE}/master/{kind}", b'{"version":99}', retain=True)
            for kind in ("catalog", "relations", "blocklist", "manifest/PO-1")
        ]
    finally:
        master.close()
    assert [rc.value for rc in refused] == [0x87] * 4


def test_a_device_receives_its_sites_master_data_and_the_backend_can_send_it(
    tls_broker: LocalBroker, test_pki: Pki, backend: TlsRecorder
) -> None:
    got: list[str] = []
    arrived = threading.Event()

    def on_message(c: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
        got.append(msg.topic)
        arrived.set()

    device = CertClient(tls_broker.port, test_pki, "dev-a", on_message=on_message)
    subscribed = threading.Event()
    device.client.on_subscribe = lambda c, u, mid, rcs, p: subscribed.set()
    try:
        device.client.subscribe([(f"tracescan/v1/{SITE}/master/#", 1)])
        assert subscribed.wait(10)
        sent = backend.client.publish(
            f"tracescan/v1/{SITE}/master/catalog", b'{"version":2}', qos=1, retain=True
        )
        sent.wait_for_publish(10)
        assert arrived.wait(10)
    finally:
        device.close()
    assert got == [f"tracescan/v1/{SITE}/master/catalog"]


# --- Revocation -------------------------------------------------------------------------------


def _refused_eventually(port: int, test_pki: Pki, issued: pki.Issued) -> bool:
    """Whether new connections with `issued` are refused within 10 s (the reload is async)."""
    ctx = tls_context(test_pki.ca, issued.cert, issued.key)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if not connects(port, ctx):
            return True
    return False


def test_a_revoked_certificate_is_refused_once_the_broker_reloads(
    tmp_path: Path, tls_broker: LocalBroker, test_pki: Pki, driven: Driven
) -> None:
    stolen = test_pki.device("dev-a")
    kept = test_pki.device("dev-b")
    stolen_ctx = tls_context(test_pki.ca, stolen.cert, stolen.key)
    assert (
        main(["pki", "--dir", str(test_pki.dir), "revoke", "--site", SITE, "--device", "dev-a"])
        == 0
    )
    # mosquitto reads crlfile when it starts and on SIGHUP only.
    assert connects(tls_broker.port, stolen_ctx)
    tls_broker.reload()
    assert _refused_eventually(tls_broker.port, test_pki, stolen)
    assert connects(tls_broker.port, tls_context(test_pki.ca, kept.cert, kept.key))
    # The agent with the revoked certificate keeps trying and never gets in.
    agent = driven(agent_config(tmp_path / "a", tls_broker.port, **test_pki.mqtt_tls(stolen)))
    assert not agent.uplink.connected.wait(2.0)
    assert agent.uplink.connect_attempts >= 2


def test_a_revoked_device_already_connected_stays_until_it_reconnects(
    tls_broker: LocalBroker, test_pki: Pki
) -> None:
    # What the README tells operators: the reload does not cut live connections; restart the
    # broker to end them at once.
    device = CertClient(tls_broker.port, test_pki, "dev-a")
    # The reload is noticed with another revoked certificate: one with dev-a's CN that got in
    # before it would take over dev-a's session (the client id is the CN).
    probe = test_pki.device("dev-p")
    try:
        for name in ("dev-a", "dev-p"):
            pki.revoke(test_pki.dir, pki.device_files(test_pki.dir, SITE, name))
        tls_broker.reload()
        assert _refused_eventually(tls_broker.port, test_pki, probe)
        assert not device.publish(f"tracescan/v1/{SITE}/dev-a/event", b'{"seq":1}').is_failure
        assert device.disconnects == []
    finally:
        device.close()


def test_renewal_the_agent_uses_the_new_certificate_at_its_next_connection(
    tmp_path: Path, tls_broker: LocalBroker, test_pki: Pki, backend: TlsRecorder, driven: Driven
) -> None:
    tls = test_pki.mqtt_tls(test_pki.device("dev-a"))
    agent = driven(agent_config(tmp_path / "a", tls_broker.port, **tls))
    agent.feed(unit_codes(5))
    assert backend.wait_for(lambda r: len(events_by_seq(r.messages)) == 5)
    old = pki.Issued(tmp_path / "old.crt", tmp_path / "old.key")
    old.cert.write_bytes(tls["cert_file"].read_bytes())
    old.key.write_bytes(tls["key_file"].read_bytes())
    # The README's renewal: reissue in place, revoke what it superseded, reload the broker.
    base = ["pki", "--dir", str(test_pki.dir)]
    assert main([*base, "device", "--site", SITE, "--device", "dev-a", "--force"]) == 0
    assert main([*base, "revoke", "--superseded", "--site", SITE, "--device", "dev-a"]) == 0
    # A restart stands in for the device's next reconnect, and re-reads the CRL too: the old
    # certificate would be refused now, so the agent only gets back in with the new files.
    tls_broker.stop()
    tls_broker.start()
    agent.feed(unit_codes(5, start=6))
    assert backend.wait_for(lambda r: len(events_by_seq(r.messages)) == 10)
    assert agent.uplink.connect_attempts >= 2
    assert not connects(tls_broker.port, tls_context(test_pki.ca, old.cert, old.key))
