"""`agent.uplink.pki` and `tracescan pki`: a CA, a broker certificate and device certificates."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from agent.cli import main
from agent.uplink import pki


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _cn(cert: x509.Certificate) -> str:
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def _issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    key = ca.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError):
        return False
    return True


def test_cli_creates_a_ca_broker_and_device_certificates_with_private_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = tmp_path / "pki"
    assert main(["pki", "--dir", str(d), "init"]) == 0
    assert main(["pki", "--dir", str(d), "broker", "broker.example.net", "10.0.0.5"]) == 0
    assert main(["pki", "--dir", str(d), "device", "--site", "site-01", "--device", "dev-a"]) == 0
    assert main(["pki", "--dir", str(d), "client", "site-01"]) == 0
    printed = capsys.readouterr().out.split()
    assert str(d / "devices" / "site-01" / "dev-a.key") in printed

    ca = _cert(d / "ca.crt")
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    broker = _cert(d / "broker.crt")
    device = _cert(d / "devices" / "site-01" / "dev-a.crt")
    bridge = _cert(d / "clients" / "site-01.crt")
    for leaf in (broker, device, bridge):
        assert _issued_by(leaf, ca)
        assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    san = broker.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["broker.example.net"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.0.0.5")]
    eku = broker.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in eku
    assert _cn(device) == "site-01/dev-a"  # the broker's %u: {prefix}/%u/# = the device's subtree
    assert _cn(bridge) == "site-01"
    assert (
        ExtendedKeyUsageOID.CLIENT_AUTH
        in device.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    )

    for key in d.rglob("*.key"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key


def test_default_broker_certificate_is_for_loopback(tmp_path: Path) -> None:
    pki.create_ca(tmp_path)
    san = _cert(pki.issue_broker(tmp_path).cert).extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    assert san.value.get_values_for_type(x509.DNSName) == ["localhost"]
    assert san.value.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]


def test_an_existing_ca_is_never_overwritten(tmp_path: Path) -> None:
    pki.create_ca(tmp_path)
    before = (tmp_path / "ca.key").read_bytes()
    with pytest.raises(pki.PkiError, match="already exists"):
        pki.create_ca(tmp_path)
    assert (tmp_path / "ca.key").read_bytes() == before
    assert main(["pki", "--dir", str(tmp_path), "init"]) == 2


def test_names_that_would_escape_the_topic_tree_are_refused(tmp_path: Path) -> None:
    pki.create_ca(tmp_path)
    for site, device in (("site/01", "dev-a"), ("site-01", "+"), ("site-01", "#"), ("", "x")):
        with pytest.raises(pki.PkiError):
            pki.issue_device(tmp_path, site, device)
    with pytest.raises(pki.PkiError):
        pki.issue_client(tmp_path, "a/b")


def test_issuing_without_a_ca_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(pki.PkiError, match="pki init"):
        pki.issue_device(tmp_path, "site-01", "dev-a")
