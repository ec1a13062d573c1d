"""AES-256-GCM sealing of stored payloads, bound to their row so rows cannot be swapped."""

from __future__ import annotations

import os
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES: Final = 12


class TamperedRecord(Exception):
    """A stored record failed authentication: altered, moved to another row, or wrong key."""


class Sealer:
    """Encrypts and authenticates payloads with the data key; the row id is associated data."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    @staticmethod
    def _aad(rid: int) -> bytes:
        return b"tracescan/outbox/%d" % rid

    def seal(self, rid: int, plaintext: bytes) -> bytes:
        """Nonce (fresh, random) followed by ciphertext and tag."""
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext, self._aad(rid))

    def open(self, rid: int, blob: bytes) -> bytes:
        """Decrypt a sealed payload, raising `TamperedRecord` if it does not authenticate."""
        try:
            return self._aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], self._aad(rid))
        except InvalidTag as exc:
            raise TamperedRecord(f"record {rid} does not authenticate") from exc
