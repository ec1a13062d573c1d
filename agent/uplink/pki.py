"""A tiny certificate authority for small deployments and tests (`tracescan pki`).

Identity on the central broker comes from the client certificate's common name
(`use_identity_as_username true`), and the broker's pattern ACL (`config/mosquitto/acl`)
substitutes it for `%u`:

- a device certificate has CN = `{site}/{device}`, so `{prefix}/%u/#` is exactly
  `{prefix}/{site}/{device}/#`;
- a site bridge certificate has CN = `{site}`, so the same pattern gives it `{prefix}/{site}/#`;
- a service certificate (backend consumer, monitoring) has a free-form CN without `/`, and gets
  its rights from a `user` block in the ACL.

Keys are EC P-256 (small and fast on a Pi), written 0600; certificates are SHA-256 signed.
Layout under the PKI directory:

    ca.crt ca.key                     the authority
    broker.crt broker.key             the broker's server certificate (SAN: given names/IPs)
    devices/{site}/{device}.crt .key  device client certificates
    clients/{name}.crt .key           site bridges and services
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_NAME: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
DEFAULT_BROKER_NAMES: Final = ("localhost", "127.0.0.1")
DEFAULT_DAYS: Final = 825  # the longest leaf lifetime common TLS clients still accept


class PkiError(Exception):
    """The PKI directory is missing, incomplete, or a name is not allowed."""


@dataclass(frozen=True, slots=True)
class Issued:
    """A certificate and its private key on disk."""

    cert: Path
    key: Path


@dataclass(frozen=True, slots=True)
class Authority:
    """A loaded CA: what signs everything else."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    files: Issued


def device_identity(site: str, device: str) -> str:
    """The certificate CN (and so the broker username) of a device: `site/device`."""
    for what, value in (("site", site), ("device", device)):
        if not _NAME.fullmatch(value):
            raise PkiError(f"{what} {value!r} must match {_NAME.pattern}")
    return f"{site}/{device}"


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # Created 0600 from the start: never readable by others, not even for a moment.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    os.chmod(path, 0o600)  # an existing file keeps its mode on O_CREAT; force it


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    os.chmod(path, 0o644)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def create_ca(directory: Path, name: str = "tracescan CA", days: int = 3650) -> Authority:
    """Create `ca.crt`/`ca.key` in `directory`; refuses to overwrite an existing CA."""
    files = Issued(directory / "ca.crt", directory / "ca.key")
    if files.cert.exists() or files.key.exists():
        raise PkiError(f"{directory}: a CA already exists there; remove it first to replace it")
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = _now()
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    _write_key(files.key, key)
    _write_cert(files.cert, cert)
    return Authority(cert, key, files)


def load_ca(directory: Path) -> Authority:
    """Load the CA created by `create_ca`."""
    files = Issued(directory / "ca.crt", directory / "ca.key")
    try:
        cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
        key = serialization.load_pem_private_key(files.key.read_bytes(), password=None)
    except OSError as exc:
        raise PkiError(f"{directory}: no CA ({exc.strerror}); run `tracescan pki init`") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise PkiError(f"{files.key}: not an EC key made by `tracescan pki`")
    return Authority(cert, key, files)


def _issue(
    ca: Authority,
    common_name: str,
    files: Issued,
    *,
    server_names: tuple[str, ...] = (),
    days: int = DEFAULT_DAYS,
) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    server = bool(server_names)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([_general_name(n) for n in server_names]), critical=False
        )
    cert = builder.sign(ca.key, hashes.SHA256())
    _write_key(files.key, key)
    _write_cert(files.cert, cert)
    return files


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def issue_broker(
    directory: Path, names: tuple[str, ...] = DEFAULT_BROKER_NAMES, days: int = DEFAULT_DAYS
) -> Issued:
    """The broker's server certificate, valid for `names` (DNS names and IP addresses)."""
    if not names:
        raise PkiError("the broker certificate needs at least one DNS name or IP address")
    ca = load_ca(directory)
    files = Issued(directory / "broker.crt", directory / "broker.key")
    return _issue(ca, names[0], files, server_names=names, days=days)


def issue_device(directory: Path, site: str, device: str, days: int = DEFAULT_DAYS) -> Issued:
    """A device's client certificate, CN = `site/device`."""
    identity = device_identity(site, device)
    ca = load_ca(directory)
    base = directory / "devices" / site / device
    return _issue(
        ca, identity, Issued(base.with_suffix(".crt"), base.with_suffix(".key")), days=days
    )


def issue_client(directory: Path, name: str, days: int = DEFAULT_DAYS) -> Issued:
    """A site bridge (CN = the site) or service (backend, monitoring) client certificate."""
    if not _NAME.fullmatch(name):
        raise PkiError(f"client name {name!r} must match {_NAME.pattern}")
    ca = load_ca(directory)
    base = directory / "clients" / name
    return _issue(ca, name, Issued(base.with_suffix(".crt"), base.with_suffix(".key")), days=days)
