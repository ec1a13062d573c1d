"""agent/uplink/tls.py: a TLS failure is logged with its likely cause named, not only the library's
words — each cause against a real mosquitto with real certificates from `agent.uplink.pki`."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from agent.uplink import pki
from hardware_sim.broker import LocalBroker
from tests.uplink.conftest import Driven, Pki, agent_config, central_extra


def _expire(cert_file: Path, ca: pki.Authority) -> None:
    """Re-sign the certificate in `cert_file` as valid for ten days that ended yesterday.

    (`tracescan pki` never issues one that is already expired; its CA signs this one.)
    """
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(cert.subject)
        .issuer_name(cert.issuer)
        .public_key(cert.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=11))
        .not_valid_after(now - dt.timedelta(days=1))
    )
    for ext in cert.extensions:
        builder = builder.add_extension(ext.value, critical=ext.critical)
    expired = builder.sign(ca.key, hashes.SHA256())
    cert_file.write_bytes(expired.public_bytes(serialization.Encoding.PEM))


def _tls_listener(pki_dir: Path, *, require_certificate: bool = False) -> str:
    """mosquitto lines for a TLS listener with the broker certificate in `pki_dir`."""
    return "\n".join(
        [
            f"cafile {pki_dir}/ca.crt",
            f"certfile {pki_dir}/broker.crt",
            f"keyfile {pki_dir}/broker.key",
            f"require_certificate {'true' if require_certificate else 'false'}",
        ]
    )


@pytest.fixture
def tls_broker_of(tmp_path: Path) -> Iterator[list[LocalBroker]]:
    """Brokers started by a test (`started.append(...)`), stopped at the end."""
    started: list[LocalBroker] = []
    yield started
    for b in started:
        b.close()


def _start(brokers: list[LocalBroker], extra: str) -> LocalBroker:
    broker = LocalBroker(extra=extra).start()
    brokers.append(broker)
    return broker


def _uplink_warning(caplog: pytest.LogCaptureFixture, timeout: float = 10.0) -> str:
    """The first WARNING the uplink logs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for rec in caplog.records:
            if rec.name == "agent.uplink.client" and rec.levelno == logging.WARNING:
                return rec.getMessage()
        time.sleep(0.05)
    raise AssertionError(f"no uplink warning; logged: {caplog.text}")


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Uplink log records at INFO and above."""
    caplog.set_level(logging.INFO, logger="agent.uplink.client")
    return caplog


def test_a_broker_certificate_from_another_ca(
    tmp_path: Path,
    tls_broker_of: list[LocalBroker],
    test_pki: Pki,
    driven: Driven,
    logs: pytest.LogCaptureFixture,
) -> None:
    broker = _start(tls_broker_of, _tls_listener(test_pki.dir))
    other = tmp_path / "other-ca"
    pki.create_ca(other, "someone else")
    driven(agent_config(tmp_path / "a", broker.port, ca_file=other / "ca.crt"))
    line = _uplink_warning(logs)
    assert "not signed by the CA in mqtt.ca_file" in line, line
    assert "CERTIFICATE_VERIFY_FAILED" in line  # the library's words stay, after the cause


def test_a_plain_mqtt_port_where_tls_is_configured(
    tmp_path: Path,
    tls_broker_of: list[LocalBroker],
    test_pki: Pki,
    driven: Driven,
    logs: pytest.LogCaptureFixture,
) -> None:
    plain = _start(tls_broker_of, "")
    driven(agent_config(tmp_path / "a", plain.port, ca_file=test_pki.ca))
    line = _uplink_warning(logs)
    assert "plain MQTT" in line, line
    assert "mqtt.port" in line


def test_a_broker_certificate_for_another_name(
    tmp_path: Path,
    tls_broker_of: list[LocalBroker],
    driven: Driven,
    logs: pytest.LogCaptureFixture,
) -> None:
    elsewhere = tmp_path / "pki-elsewhere"
    pki.create_ca(elsewhere, "test CA")
    pki.issue_broker(elsewhere, ("mqtt.example.net",))
    broker = _start(tls_broker_of, _tls_listener(elsewhere))
    driven(agent_config(tmp_path / "a", broker.port, ca_file=elsewhere / "ca.crt"))
    line = _uplink_warning(logs)
    assert "name mismatch" in line, line
    assert "127.0.0.1" in line
    assert "mqtt.host" in line


def test_an_expired_broker_certificate(
    tmp_path: Path,
    tls_broker_of: list[LocalBroker],
    driven: Driven,
    logs: pytest.LogCaptureFixture,
) -> None:
    stale = tmp_path / "pki-stale"
    pki.create_ca(stale, "test CA")
    pki.issue_broker(stale)
    _expire(stale / "broker.crt", pki.load_ca(stale))
    broker = _start(tls_broker_of, _tls_listener(stale))
    driven(agent_config(tmp_path / "a", broker.port, ca_file=stale / "ca.crt"))
    line = _uplink_warning(logs)
    assert "expired" in line, line
    assert "clock" in line


def test_a_client_certificate_the_broker_refuses(
    tmp_path: Path,
    test_pki: Pki,
    tls_broker_of: list[LocalBroker],
    driven: Driven,
    logs: pytest.LogCaptureFixture,
) -> None:
    broker = _start(tls_broker_of, central_extra(test_pki.dir))
    rogue = tmp_path / "rogue"
    pki.create_ca(rogue, "rogue CA")
    forged = pki.issue_device(rogue, "site-01", "dev-a")
    driven(
        agent_config(
            tmp_path / "a",
            broker.port,
            ca_file=test_pki.ca,
            cert_file=forged.cert,
            key_file=forged.key,
        )
    )
    line = _uplink_warning(logs)
    assert "refused this device's client certificate" in line, line
    assert "mqtt.cert_file" in line


def test_no_client_certificate_where_the_broker_requires_one(
    tmp_path: Path,
    test_pki: Pki,
    tls_broker_of: list[LocalBroker],
    driven: Driven,
    logs: pytest.LogCaptureFixture,
) -> None:
    broker = _start(tls_broker_of, central_extra(test_pki.dir))
    driven(agent_config(tmp_path / "a", broker.port, ca_file=test_pki.ca))
    line = _uplink_warning(logs)
    assert "client certificate" in line, line
    assert "mqtt.cert_file" in line
