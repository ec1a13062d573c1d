"""A tiny certificate authority for small deployments and tests (`tracescan pki`).

Identity on the brokers comes from the client certificate's common name: with
`use_identity_as_username true` the CN is the MQTT username, with `use_username_as_clientid
true` it is the client id as well, and the ACL (`config/mosquitto/acl`) substitutes it for `%u`:

- a device certificate has CN = `{site}/{device}`, so `{prefix}/%u/event` is exactly
  `{prefix}/{site}/{device}/event`; device ids that name a site-wide topic (`master`, ...) are
  refused (`RESERVED_DEVICE_IDS`);
- a site bridge certificate has CN = `{site}` and a service certificate (backend, ledger
  consumers, monitoring) a free-form CN without `/`; both get their rights from a `user` block
  in the ACL. Site and service names share that namespace: never name a site like a service.

Keys are EC P-256 (small and fast on a Pi), written 0600; certificates are SHA-256 signed.
Nothing is ever overwritten without `force`. Every certificate issued is also kept under
`issued/` by serial number, so revoking an identity revokes its superseded certificates too.
Layout under the PKI directory:

    ca.crt ca.key                     the authority
    crl.pem                           revoked certificates (the brokers' `crlfile`)
    broker.crt broker.key             the central broker's server certificate
    brokers/{site}.crt .key           a site broker's server certificate (its LAN listener)
    devices/{site}/{device}.crt .key  device client certificates
    clients/{name}.crt .key           site bridges and services
    issued/{serial}.crt               every certificate ever issued (public, for revocation)

Lifetimes: the CA 10 years; every leaf 825 days (about 2 years 3 months), the longest server
certificate Apple's TLS clients accept even from a private CA; client libraries (OpenSSL,
Python's ssl, paho) set no limit, but one renewal cycle for everything is simpler to run. The
CRL is good for a year: an expired CRL makes mosquitto refuse *every* client certificate.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from agent.config.sections import RESERVED_DEVICE_IDS

_NAME: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
DEFAULT_BROKER_NAMES: Final = ("localhost", "127.0.0.1")
CA_DAYS: Final = 3650
DEFAULT_DAYS: Final = 825  # the longest server certificate Apple's TLS clients accept
CRL_DAYS: Final = 365  # mosquitto refuses every client once the CRL's nextUpdate has passed
CRL_FILE: Final = "crl.pem"
_ISSUED: Final = "issued"


class PkiError(Exception):
    """The PKI directory is missing, incomplete, or a name or lifetime is not allowed."""


class AlreadyIssued(PkiError):
    """A certificate or key is already there; replacing it takes `force` (a CA: never)."""

    def __init__(self, path: Path, remedy: str = "--force replaces it") -> None:
        super().__init__(f"{path} already exists; nothing written ({remedy})")
        self.path = path


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


@dataclass(frozen=True, slots=True)
class Revoked:
    """What `revoke` did: the serial numbers it added and the CRL it wrote."""

    serials: tuple[int, ...]
    crl: Path


#: What `inventory` says of a certificate.
State = Literal["valid", "expired", "revoked", "superseded"]


@dataclass(frozen=True, slots=True)
class Certificate:
    """One certificate of the PKI directory, as `tracescan pki list` shows it."""

    path: Path
    common_name: str
    serial: int
    not_after: dt.datetime
    state: State
    in_use: bool  # where a broker or client reads it, not a copy under `issued/`


def _check_name(what: str, value: str) -> None:
    if not _NAME.fullmatch(value):
        raise PkiError(f"{what} {value!r} must match {_NAME.pattern}")


def device_identity(site: str, device: str) -> str:
    """The certificate CN (and so the broker username and client id) of a device."""
    _check_name("site", site)
    _check_name("device", device)
    if device.lower() in RESERVED_DEVICE_IDS:
        raise PkiError(
            f"device {device!r} is reserved: {{prefix}}/{site}/{device}/… would be a site-wide"
            f" topic; reserved: {', '.join(sorted(RESERVED_DEVICE_IDS))}"
        )
    return f"{site}/{device}"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _replace(path: Path, data: bytes, mode: int) -> None:
    """Write `path` whole or not at all, created with `mode` from the start."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_pair(files: Issued, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
    files.key.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    files.cert.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    # A private key is 0600 from its first byte: never readable by others, not even briefly.
    _replace(files.key, _key_pem(key), 0o600)
    _replace(files.cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def _refuse_overwrite(files: Issued, force: bool) -> None:
    if force:
        return
    for path in (files.cert, files.key):
        if path.exists():
            raise AlreadyIssued(path)


def create_ca(directory: Path, name: str = "tracescan CA", days: int = CA_DAYS) -> Authority:
    """Create `ca.crt`/`ca.key` and an empty CRL in `directory`; never replaces a CA."""
    files = Issued(directory / "ca.crt", directory / "ca.key")
    for path in (files.cert, files.key):
        if path.exists():
            # No --force: every certificate and the brokers' trust depend on this key.
            raise AlreadyIssued(path, "a CA is never replaced; start over in a new directory")
    if days < 1:
        raise PkiError(f"--days must be at least 1, got {days}")
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
    _write_pair(files, cert, key)
    ca = Authority(cert, key, files)
    # The brokers' `crlfile` must exist before they start: mosquitto refuses to run without it.
    _sign_crl(directory, ca, {})
    return ca


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


def _not_after(ca: Authority, days: int) -> dt.datetime:
    """When a new leaf expires; it may not outlive the CA that vouches for it."""
    if days < 1:
        raise PkiError(f"--days must be at least 1, got {days}")
    end = _now() + dt.timedelta(days=days)
    ca_end = ca.cert.not_valid_after_utc
    if end > ca_end:
        left = (ca_end - _now()).days
        raise PkiError(
            f"the CA expires on {ca_end:%Y-%m-%d}; a certificate cannot outlive it"
            f" (--days {left} at most, or plan a new CA)"
        )
    return end


def _issue(
    directory: Path,
    common_name: str,
    files: Issued,
    *,
    server_names: tuple[str, ...] = (),
    days: int,
    force: bool,
) -> Issued:
    _refuse_overwrite(files, force)
    ca = load_ca(directory)
    not_after = _not_after(ca, days)
    key = ec.generate_private_key(ec.SECP256R1())
    server = bool(server_names)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - dt.timedelta(minutes=5))
        .not_valid_after(not_after)
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
    pem = cert.public_bytes(serialization.Encoding.PEM)
    # Registered before it is handed out: a certificate that exists can always be revoked.
    register = directory / _ISSUED
    register.mkdir(mode=0o755, exist_ok=True)
    _replace(register / f"{cert.serial_number:x}.crt", pem, 0o644)
    _write_pair(files, cert, key)
    return files


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def issue_broker(
    directory: Path,
    names: tuple[str, ...] = DEFAULT_BROKER_NAMES,
    days: int = DEFAULT_DAYS,
    *,
    site: str | None = None,
    force: bool = False,
) -> Issued:
    """A broker's server certificate, valid for `names` (DNS names and IP addresses): the
    central broker's (`broker.crt`), or with `site` that site broker's (`brokers/{site}.crt`)."""
    if not names:
        raise PkiError("the broker certificate needs at least one DNS name or IP address")
    if site is None:
        files = Issued(directory / "broker.crt", directory / "broker.key")
    else:
        _check_name("site", site)
        base = directory / "brokers" / site
        files = Issued(base.with_suffix(".crt"), base.with_suffix(".key"))
    return _issue(directory, names[0], files, server_names=names, days=days, force=force)


def device_files(directory: Path, site: str, device: str) -> Issued:
    """Where a device's certificate and key live in the PKI directory."""
    _check_name("site", site)
    _check_name("device", device)  # not reserved names: a legacy one must stay revocable
    base = directory / "devices" / site / device
    return Issued(base.with_suffix(".crt"), base.with_suffix(".key"))


def client_files(directory: Path, name: str) -> Issued:
    """Where a site bridge's or service's certificate and key live in the PKI directory."""
    _check_name("client name", name)
    base = directory / "clients" / name
    return Issued(base.with_suffix(".crt"), base.with_suffix(".key"))


def issue_device(
    directory: Path, site: str, device: str, days: int = DEFAULT_DAYS, *, force: bool = False
) -> Issued:
    """A device's client certificate, CN = `site/device`."""
    identity = device_identity(site, device)
    files = device_files(directory, site, device)
    return _issue(directory, identity, files, days=days, force=force)


def issue_client(
    directory: Path, name: str, days: int = DEFAULT_DAYS, *, force: bool = False
) -> Issued:
    """A site bridge (CN = the site) or service (backend, monitoring) client certificate."""
    return _issue(directory, name, client_files(directory, name), days=days, force=force)


# --- Revocation ------------------------------------------------------------------------------


def _load_crl(directory: Path, ca: Authority) -> x509.CertificateRevocationList | None:
    path = directory / CRL_FILE
    try:
        crl = x509.load_pem_x509_crl(path.read_bytes())
    except FileNotFoundError:
        return None  # a PKI made before revocation existed
    except (OSError, ValueError) as exc:
        raise PkiError(f"{path}: not a readable CRL ({exc})") from exc
    key = ca.cert.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or not crl.is_signature_valid(key):
        raise PkiError(f"{path}: not signed by this CA; refusing to build on it")
    return crl


def _revoked(crl: x509.CertificateRevocationList | None) -> dict[int, dt.datetime]:
    if crl is None:
        return {}
    return {r.serial_number: r.revocation_date_utc for r in crl}


def _crl_number(crl: x509.CertificateRevocationList | None) -> int:
    if crl is None:
        return 0
    try:
        return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    except x509.ExtensionNotFound:
        return 0


def _sign_crl(
    directory: Path,
    ca: Authority,
    revoked: dict[int, dt.datetime],
    *,
    previous: x509.CertificateRevocationList | None = None,
    days: int = CRL_DAYS,
) -> Path:
    now = _now()
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.cert.subject)
        .last_update(now)
        .next_update(now + dt.timedelta(days=days))
        .add_extension(x509.CRLNumber(_crl_number(previous) + 1), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
    )
    for serial, when in sorted(revoked.items()):
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when).build()
        )
    path = directory / CRL_FILE
    _replace(
        path, builder.sign(ca.key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM), 0o644
    )
    return path


def refresh_crl(directory: Path, days: int = CRL_DAYS) -> Path:
    """Sign the CRL again with the same entries and a new nextUpdate (or create it)."""
    if days < 1:
        raise PkiError(f"--days must be at least 1, got {days}")
    ca = load_ca(directory)
    crl = _load_crl(directory, ca)
    return _sign_crl(directory, ca, _revoked(crl), previous=crl, days=days)


def _certificates_of(paths: Iterable[Path]) -> Iterator[tuple[Path, x509.Certificate]]:
    for path in paths:
        try:
            yield path, x509.load_pem_x509_certificate(path.read_bytes())
        except (OSError, ValueError):
            continue  # not ours (an editor's backup, a half-copied file): nothing to list


def _common_name(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


def revoke(directory: Path, files: Issued, *, superseded_only: bool = False) -> Revoked:
    """Revoke every certificate ever issued to the identity whose current files are `files`
    (or, with `superseded_only`, all of them but the current one) and re-sign the CRL."""
    ca = load_ca(directory)
    current = [c for _, c in _certificates_of([files.cert])]
    register = sorted((directory / _ISSUED).glob("*.crt"))
    if not current:
        raise PkiError(f"{files.cert}: no such certificate to revoke")
    identity = _common_name(current[0])
    issued = {c.serial_number for _, c in _certificates_of(register) if _common_name(c) == identity}
    issued.add(current[0].serial_number)  # a PKI made before the register existed
    if superseded_only:
        issued.discard(current[0].serial_number)
    crl = _load_crl(directory, ca)
    revoked = _revoked(crl)
    added = tuple(sorted(issued - revoked.keys()))
    now = _now()
    revoked.update(dict.fromkeys(added, now))
    return Revoked(added, _sign_crl(directory, ca, revoked, previous=crl))


def crl_next_update(directory: Path) -> dt.datetime | None:
    """When the CRL runs out (every client is refused from then on), or None without one."""
    crl = _load_crl(directory, load_ca(directory))
    return None if crl is None else crl.next_update_utc


def inventory(directory: Path) -> list[Certificate]:
    """Every certificate in the PKI directory: the ones in use, then superseded copies."""
    ca = load_ca(directory)
    revoked = _revoked(_load_crl(directory, ca))
    now = _now()
    in_use = [
        directory / "ca.crt",
        directory / "broker.crt",
        *sorted((directory / "brokers").glob("*.crt")),
        *sorted((directory / "devices").glob("*/*.crt")),
        *sorted((directory / "clients").glob("*.crt")),
    ]
    listed: list[Certificate] = []
    seen: set[int] = set()
    for path, cert in _certificates_of(in_use):
        seen.add(cert.serial_number)
        state: State = "valid"
        if cert.serial_number in revoked:
            state = "revoked"
        elif cert.not_valid_after_utc < now:
            state = "expired"
        listed.append(
            Certificate(
                path, _common_name(cert), cert.serial_number, cert.not_valid_after_utc, state, True
            )
        )
    for path, cert in _certificates_of(sorted((directory / _ISSUED).glob("*.crt"))):
        if cert.serial_number in seen:
            continue
        state = "revoked" if cert.serial_number in revoked else "superseded"
        listed.append(
            Certificate(
                path, _common_name(cert), cert.serial_number, cert.not_valid_after_utc, state, False
            )
        )
    return listed
