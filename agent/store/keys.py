"""The device's keys: Ed25519 signing key, AES-256 data key and HMAC index key.

Keys live in `key_dir`, never in `data_dir`: a copied or stolen data directory is unreadable
without them. The directory is 0700 and every key file 0600; keys that group or others could
read are refused, because a leaked signing key lets anyone forge this device's records.
"""

from __future__ import annotations

import base64
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

SIGNING_FILE: Final = "signing.key"
INDEX_FILE: Final = "index.key"
KEY_BYTES: Final = 32
_DATA_PATTERN: Final = re.compile(r"data-(\d{1,5})\.key")


def data_file(kid: int) -> str:
    """File name of data key number `kid` (1 is the first; rotation adds the next)."""
    return f"data-{kid}.key"


DATA_FILE: Final = data_file(1)


class KeyStoreError(Exception):
    """Keys are missing, unreadable or exposed; the message says which file and what to do."""


@dataclass(frozen=True, slots=True)
class KeyRing:
    """The three secrets a device holds."""

    signing: Ed25519PrivateKey
    data: dict[int, bytes]  # key id -> AES-256 key; the highest id seals new records
    index: bytes

    @property
    def public(self) -> Ed25519PublicKey:
        """The verification key the central side registers for this device."""
        return self.signing.public_key()

    def public_b64(self) -> str:
        """Raw 32-byte public key, base64: what `tracescan pubkey` prints."""
        # Not `public_bytes(Encoding.Raw, ...)`: the serialization package costs ~2.5 MB RSS.
        raw = self.public.public_bytes_raw()
        return base64.b64encode(raw).decode("ascii")


def _check_private(path: Path, *, is_dir: bool) -> None:
    st = path.stat()
    if is_dir and not stat.S_ISDIR(st.st_mode):
        raise KeyStoreError(f"{path}: key_dir is not a directory")
    if st.st_mode & 0o077:
        want = "0700" if is_dir else "0600"
        raise KeyStoreError(
            f"{path}: permissions {stat.S_IMODE(st.st_mode):04o} let other users read keys; run chmod {want} {path}"
        )


def _write_secret(path: Path, data: bytes) -> None:
    """Create a key file atomically with 0600 from the first byte on."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _read_secret(path: Path) -> bytes:
    _check_private(path, is_dir=False)
    data = path.read_bytes()
    if len(data) != KEY_BYTES:
        raise KeyStoreError(
            f"{path}: expected {KEY_BYTES} bytes, found {len(data)}: the file is damaged"
        )
    return data


def load(key_dir: Path, *, create: bool = True) -> KeyRing:
    """Load the key ring, creating missing keys (and the 0700 directory) when `create`.

    With `create=False` (the store already holds data sealed with these keys) a missing key is
    an error: new keys would make the existing records unreadable.
    """
    try:
        if not key_dir.exists():
            if not create:
                raise KeyStoreError(
                    f"{key_dir}: key_dir does not exist, but the store holds data sealed with its keys;"
                    " restore key_dir from backup"
                )
            key_dir.mkdir(mode=0o700, parents=True)
        _check_private(key_dir, is_dir=True)
        for name in (SIGNING_FILE, INDEX_FILE):
            _ensure(key_dir / name, create=create)
        data_ids = sorted(
            int(m.group(1)) for p in key_dir.iterdir() if (m := _DATA_PATTERN.fullmatch(p.name))
        )
        if not data_ids:
            _ensure(key_dir / DATA_FILE, create=create)
            data_ids = [1]
        signing = _read_secret(key_dir / SIGNING_FILE)
        return KeyRing(
            signing=Ed25519PrivateKey.from_private_bytes(signing),
            data={kid: _read_secret(key_dir / data_file(kid)) for kid in data_ids},
            index=_read_secret(key_dir / INDEX_FILE),
        )
    except OSError as exc:
        raise KeyStoreError(f"{key_dir}: {exc.strerror or exc}") from exc


def _ensure(path: Path, *, create: bool) -> None:
    if path.exists():
        return
    if not create:
        raise KeyStoreError(
            f"{path}: key missing, but the store holds data sealed with it; restore it from backup"
        )
    if path.name == SIGNING_FILE:
        _write_secret(path, Ed25519PrivateKey.generate().private_bytes_raw())
    else:
        _write_secret(path, os.urandom(KEY_BYTES))


def signing_key(key_dir: Path) -> Ed25519PrivateKey:
    """One Ed25519 signing key in `key_dir`, kept like the device's (0700 dir, 0600 file),
    created on first use; the central ledger keeps its key this way.

    Several processes may start at once (ledger consumers): the key is published with a hard
    link, which fails if another process got there first, so all of them use the same key.
    """
    path = key_dir / SIGNING_FILE
    try:
        key_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        _check_private(key_dir, is_dir=True)
        if not path.exists():
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            _write_secret(tmp, Ed25519PrivateKey.generate().private_bytes_raw())
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass  # another process created it first: use theirs
            finally:
                tmp.unlink()
            dfd = os.open(key_dir, os.O_RDONLY)  # the new name survives a power cut
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        return Ed25519PrivateKey.from_private_bytes(_read_secret(path))
    except OSError as exc:
        raise KeyStoreError(f"{key_dir}: {exc.strerror or exc}") from exc


def rotate_data_key(key_dir: Path) -> int:
    """Add a new data key; new records use it, older records keep opening with theirs."""
    ring = load(key_dir, create=False)
    kid = max(ring.data) + 1
    _write_secret(key_dir / data_file(kid), os.urandom(KEY_BYTES))
    return kid
