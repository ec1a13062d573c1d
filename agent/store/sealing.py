"""AES-256-GCM sealing of stored payloads, bound to their row so rows cannot be swapped.

Sealed layout: `version (1) | key id (2, big-endian) | nonce (12) | ciphertext+tag`. The key
id lets a rotated data key coexist with older ones: new rows use the newest key, old rows stay
readable as long as their key file is kept.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

FORMAT: Final = 1
NONCE_BYTES: Final = 12
_HEADER: Final = 3


class TamperedRecord(Exception):
    """A stored record failed authentication: altered, moved to another row, or wrong key."""


class Sealer:
    """Encrypts and authenticates payloads with the data keys; the row id is associated data."""

    def __init__(self, keys: bytes | Mapping[int, bytes]) -> None:
        ring = {1: keys} if isinstance(keys, bytes) else dict(keys)
        if not ring:
            raise ValueError("no data key")
        self._aeads = {kid: AESGCM(key) for kid, key in ring.items()}
        self.current = max(ring)

    @staticmethod
    def _aad(rid: int) -> bytes:
        return b"tracescan/outbox/%d" % rid

    def seal(self, rid: int, plaintext: bytes) -> bytes:
        """Header, fresh random nonce, then ciphertext and tag, under the newest key."""
        return self._seal(self._aad(rid), plaintext, os.urandom(NONCE_BYTES))

    def seal_rows(self, first_rid: int, payloads: Sequence[bytes]) -> list[bytes]:
        """`seal` for consecutive rows from `first_rid`: one draw from the OS for all nonces."""
        pool = os.urandom(NONCE_BYTES * len(payloads))
        return [
            self._seal(self._aad(first_rid + i), p, pool[i * NONCE_BYTES : (i + 1) * NONCE_BYTES])
            for i, p in enumerate(payloads)
        ]

    def open(self, rid: int, blob: bytes) -> bytes:
        """Decrypt a sealed payload, raising `TamperedRecord` if it does not authenticate."""
        return self._open(self._aad(rid), blob, f"record {rid}")

    def seal_named(self, name: str, plaintext: bytes) -> bytes:
        """Seal a named blob (master data, context); the name is the associated data."""
        return self._seal(b"tracescan/named/" + name.encode(), plaintext, os.urandom(NONCE_BYTES))

    def open_named(self, name: str, blob: bytes) -> bytes:
        """Open a blob sealed with `seal_named` under the same name."""
        return self._open(b"tracescan/named/" + name.encode(), blob, name)

    def _seal(self, aad: bytes, plaintext: bytes, nonce: bytes) -> bytes:
        header = bytes((FORMAT,)) + self.current.to_bytes(2, "big")
        return header + nonce + self._aeads[self.current].encrypt(nonce, plaintext, aad)

    def _open(self, aad: bytes, blob: bytes, what: str) -> bytes:
        if len(blob) < _HEADER + NONCE_BYTES + 16 or blob[0] != FORMAT:
            raise TamperedRecord(f"{what} is not a sealed payload")
        kid = int.from_bytes(blob[1:_HEADER], "big")
        aead = self._aeads.get(kid)
        if aead is None:
            raise TamperedRecord(f"{what} needs data key {kid}, which is not in key_dir")
        nonce = blob[_HEADER : _HEADER + NONCE_BYTES]
        try:
            return aead.decrypt(nonce, blob[_HEADER + NONCE_BYTES :], aad)
        except InvalidTag as exc:
            raise TamperedRecord(f"{what} does not authenticate") from exc
