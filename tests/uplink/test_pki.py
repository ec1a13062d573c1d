"""`agent.uplink.pki` and `tracescan pki`: a CA, a broker certificate and device certificates."""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
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
    assert main(["pki", "--dir", str(tmp_path), "init"]) == 73


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


# --- Overwriting, reserved names, lifetimes (issue 15) ---------------------------------------


@pytest.mark.parametrize(
    ("command", "files"),
    [
        (["broker"], ["broker.crt", "broker.key"]),
        (["broker", "--site", "site-01"], ["brokers/site-01.crt", "brokers/site-01.key"]),
        (
            ["device", "--site", "site-01", "--device", "dev-a"],
            ["devices/site-01/dev-a.crt", "devices/site-01/dev-a.key"],
        ),
        (["client", "backend"], ["clients/backend.crt", "clients/backend.key"]),
    ],
)
def test_nothing_is_overwritten_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str], files: list[str]
) -> None:
    d = tmp_path / "pki"
    base = ["pki", "--dir", str(d)]
    assert main([*base, "init"]) == 0
    assert main([*base, *command]) == 0
    before = {f: (d / f).read_bytes() for f in files}
    capsys.readouterr()

    assert main([*base, *command]) == 73
    err = capsys.readouterr().err
    assert err.count("\n") == 1  # one line, no traceback
    assert str(d / files[0]) in err
    assert "--force" in err
    assert {f: (d / f).read_bytes() for f in files} == before
    assert not list(d.rglob("*.tmp"))

    assert main([*base, *command, "--force"]) == 0
    after = {f: (d / f).read_bytes() for f in files}
    assert all(after[f] != before[f] for f in files)
    assert stat.S_IMODE((d / files[1]).stat().st_mode) == 0o600


def test_a_missing_key_beside_an_existing_certificate_is_still_refused(tmp_path: Path) -> None:
    pki.create_ca(tmp_path)
    issued = pki.issue_device(tmp_path, "site-01", "dev-a")
    issued.key.unlink()
    with pytest.raises(pki.AlreadyIssued, match=r"dev-a\.crt"):
        pki.issue_device(tmp_path, "site-01", "dev-a")
    assert not issued.key.exists()


def test_reserved_device_ids_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pki.create_ca(tmp_path)
    for device in ("master", "cmd", "status", "event", "reject", "alert", "report", "Master"):
        with pytest.raises(pki.PkiError, match="reserved"):
            pki.issue_device(tmp_path, "site-01", device)
    base = ["pki", "--dir", str(tmp_path)]
    assert main([*base, "device", "--site", "site-01", "--device", "master"]) == 2
    assert "reserved" in capsys.readouterr().err
    assert not (tmp_path / "devices").exists()


def _days_left(cert: x509.Certificate) -> float:
    return (cert.not_valid_after_utc - dt.datetime.now(dt.UTC)) / dt.timedelta(days=1)


def test_lifetimes_ca_ten_years_leaves_825_days_and_never_beyond_the_ca(tmp_path: Path) -> None:
    pki.create_ca(tmp_path)
    assert 3649 < _days_left(_cert(tmp_path / "ca.crt")) <= 3650
    for issued in (
        pki.issue_broker(tmp_path),
        pki.issue_device(tmp_path, "site-01", "dev-a"),
        pki.issue_client(tmp_path, "site-01"),
    ):
        assert 824 < _days_left(_cert(issued.cert)) <= 825
    assert 29 < _days_left(_cert(pki.issue_client(tmp_path, "probe", days=30).cert)) <= 30
    with pytest.raises(pki.PkiError, match="cannot outlive"):
        pki.issue_device(tmp_path, "site-01", "dev-b", days=4000)
    assert main(["pki", "--dir", str(tmp_path), "client", "x", "--days", "0"]) == 2


# --- Revocation ------------------------------------------------------------------------------


def _crl(directory: Path) -> x509.CertificateRevocationList:
    return x509.load_pem_x509_crl((directory / "crl.pem").read_bytes())


def _revoked_serials(directory: Path) -> set[int]:
    return {r.serial_number for r in _crl(directory)}


def test_init_writes_an_empty_crl_signed_by_the_ca_for_a_year(tmp_path: Path) -> None:
    ca = pki.create_ca(tmp_path)
    crl = _crl(tmp_path)
    key = ca.cert.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    assert crl.is_signature_valid(key)
    assert crl.issuer == ca.cert.subject
    assert len(crl) == 0
    assert crl.next_update_utc is not None
    assert 364 < (crl.next_update_utc - crl.last_update_utc) / dt.timedelta(days=1) <= 365


def test_revoke_a_device_and_a_client(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["pki", "--dir", str(tmp_path)]
    assert main([*base, "init"]) == 0
    a = pki.issue_device(tmp_path, "site-01", "dev-a")
    b = pki.issue_device(tmp_path, "site-01", "dev-b")
    bridge = pki.issue_client(tmp_path, "site-01")
    capsys.readouterr()

    assert main([*base, "revoke", "--site", "site-01", "--device", "dev-a"]) == 0
    out = capsys.readouterr().out
    assert f"{_cert(a.cert).serial_number:x}" in out
    assert str(tmp_path / "crl.pem") in out
    assert _revoked_serials(tmp_path) == {_cert(a.cert).serial_number}

    assert main([*base, "revoke", "site-01"]) == 0
    assert _revoked_serials(tmp_path) == {
        _cert(a.cert).serial_number,
        _cert(bridge.cert).serial_number,
    }
    assert _cert(b.cert).serial_number not in _revoked_serials(tmp_path)
    crl = _crl(tmp_path)
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 3


def test_revoking_an_identity_revokes_its_superseded_certificates_too(tmp_path: Path) -> None:
    pki.create_ca(tmp_path)
    old = _cert(pki.issue_device(tmp_path, "site-01", "dev-a").cert).serial_number
    new = _cert(pki.issue_device(tmp_path, "site-01", "dev-a", force=True).cert).serial_number
    # Renewal: once the device uses the new certificate, only the old one goes.
    assert main(["pki", "--dir", str(tmp_path), "revoke", "--superseded", "site-01/dev-a"]) == 2
    args = ["pki", "--dir", str(tmp_path), "revoke", "--site", "site-01", "--device", "dev-a"]
    assert main([*args, "--superseded"]) == 0
    assert _revoked_serials(tmp_path) == {old}
    # Decommissioning (or a stolen key): everything issued to the identity goes.
    assert main(args) == 0
    assert _revoked_serials(tmp_path) == {old, new}


def test_revoking_what_was_never_issued_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pki.create_ca(tmp_path)
    before = (tmp_path / "crl.pem").read_bytes()
    assert main(["pki", "--dir", str(tmp_path), "revoke", "nobody"]) == 2
    assert "nobody" in capsys.readouterr().err
    assert (tmp_path / "crl.pem").read_bytes() == before


def test_crl_is_signed_again_with_the_same_entries(tmp_path: Path) -> None:
    pki.create_ca(tmp_path)
    pki.issue_device(tmp_path, "site-01", "dev-a")
    pki.revoke(tmp_path, pki.device_files(tmp_path, "site-01", "dev-a"))
    before = _crl(tmp_path)
    assert main(["pki", "--dir", str(tmp_path), "crl", "--days", "30"]) == 0
    after = _crl(tmp_path)
    assert _revoked_serials(tmp_path) == {r.serial_number for r in before}
    assert after.next_update_utc is not None
    assert 29 < (after.next_update_utc - after.last_update_utc) / dt.timedelta(days=1) <= 30


def test_crl_creates_the_list_for_a_pki_made_before_revocation(tmp_path: Path) -> None:
    pki.create_ca(tmp_path)
    (tmp_path / "crl.pem").unlink()
    assert main(["pki", "--dir", str(tmp_path), "crl"]) == 0
    assert len(_crl(tmp_path)) == 0


def test_a_crl_not_signed_by_the_ca_is_not_built_upon(tmp_path: Path) -> None:
    pki.create_ca(tmp_path / "ours")
    pki.create_ca(tmp_path / "theirs")
    (tmp_path / "ours" / "crl.pem").write_bytes((tmp_path / "theirs" / "crl.pem").read_bytes())
    with pytest.raises(pki.PkiError, match="not signed by this CA"):
        pki.refresh_crl(tmp_path / "ours")


def test_list_shows_every_certificate_with_its_expiry_and_state(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pki.create_ca(tmp_path)
    pki.issue_broker(tmp_path)
    pki.issue_device(tmp_path, "site-01", "dev-a")
    pki.issue_device(tmp_path, "site-01", "dev-a", force=True)
    pki.issue_device(tmp_path, "site-01", "dev-b")
    pki.revoke(tmp_path, pki.device_files(tmp_path, "site-01", "dev-b"))
    capsys.readouterr()
    assert main(["pki", "--dir", str(tmp_path), "list"]) == 0
    rows = [re.split(r" {2,}", line) for line in capsys.readouterr().out.splitlines()]
    by_state = {(r[0], r[-1]) for r in rows[1:]}
    assert ("tracescan CA", "valid") in by_state
    assert ("site-01/dev-a", "valid") in by_state
    assert ("site-01/dev-a", "superseded") in by_state
    assert ("site-01/dev-b", "revoked") in by_state
    assert any(r[0] == "crl.pem" for r in rows)


def test_list_exits_1_when_something_in_use_expires_soon(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pki.create_ca(tmp_path)
    pki.issue_device(tmp_path, "site-01", "dev-a", days=20)
    assert main(["pki", "--dir", str(tmp_path), "list"]) == 1
    assert "site-01/dev-a" in capsys.readouterr().err
    pki.issue_device(tmp_path, "site-01", "dev-a", force=True)
    pki.refresh_crl(tmp_path, days=10)
    assert main(["pki", "--dir", str(tmp_path), "list"]) == 1
    assert "crl.pem" in capsys.readouterr().err
