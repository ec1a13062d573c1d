"""Checks anyone holding only the device's public key can run on its event stream."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from agent.records.envelope import ZERO_HASH, canonical


@dataclass(slots=True)
class ChainReport:
    """What verifying a device's event stream found."""

    events: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when signatures, seq continuity and the hash chain all hold."""
        return not self.problems


def public_key_from_b64(text: str) -> Ed25519PublicKey:
    """Decode `tracescan pubkey` output."""
    return Ed25519PublicKey.from_public_bytes(base64.b64decode(text.strip()))


def verify_signature(obj: dict[str, Any], key: Ed25519PublicKey) -> bool:
    """True when `obj['sig']` signs the canonical bytes of `obj` without `sig`."""
    return verified_bytes(obj, key) is not None


def verified_bytes(obj: dict[str, Any], key: Ed25519PublicKey) -> bytes | None:
    """The signed bytes of `obj` (canonical, without `sig`) when `obj['sig']` signs them, else
    None: a verifier that also needs the chain hash serialises the record once."""
    body = {k: v for k, v in obj.items() if k != "sig"}
    signed = canonical(body)
    try:
        key.verify(base64.b64decode(str(obj.get("sig", "")), validate=True), signed)
    except (InvalidSignature, binascii.Error, ValueError):
        return None
    return signed


def verify_chain(
    payloads: Iterable[bytes], key: Ed25519PublicKey, *, expect_first: int | None = 1
) -> ChainReport:
    """Verify events given in seq order (duplicates already removed)."""
    report = ChainReport()
    prev_hash: str | None = ZERO_HASH if expect_first == 1 else None
    prev_seq: int | None = None if expect_first is None else expect_first - 1
    for raw in payloads:
        obj = json.loads(raw)
        seq = obj.get("seq")
        report.events += 1
        if report.first_seq is None:
            report.first_seq = seq
        report.last_seq = seq
        if not verify_signature(obj, key):
            report.problems.append(f"seq {seq}: bad signature")
        if prev_seq is not None and seq != prev_seq + 1:
            report.problems.append(f"seq {seq}: expected {prev_seq + 1}")
        if prev_hash is not None and obj.get("prev") != prev_hash:
            report.problems.append(f"seq {seq}: prev does not match the hash of seq {prev_seq}")
        prev_seq = seq if isinstance(seq, int) else prev_seq
        body = {k: v for k, v in obj.items() if k != "sig"}
        prev_hash = hashlib.sha256(canonical(body)).hexdigest()
    return report
