"""The record envelope of SPEC.md: canonical bytes, the serialise-once form, the hash chain."""

from __future__ import annotations

import binascii
import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Final

ZERO_HASH: Final = "0" * 64
VERSION: Final = 1
SIG: Final = "sig"

#: SPEC's serialisation, built once (`json.dumps` with options builds an encoder per call).
_ENCODER: Final = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical(obj: dict[str, Any]) -> bytes:
    """SPEC's serialisation: sorted keys, no spaces, UTF-8."""
    return _ENCODER.encode(obj).encode("utf-8")


def rfc3339(epoch: float) -> str:
    """Scan time as RFC 3339 with an explicit UTC offset, millisecond precision."""
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True, slots=True)
class ChainHead:
    """The last committed `seq` and the hash of its signed bytes."""

    seq: int = 0
    hash: str = ZERO_HASH


@dataclass(frozen=True, slots=True)
class Unsigned:
    """A record's canonical bytes, serialised once for both texts SPEC needs.

    `signed` is `canonical(body)`: what the signature covers and, for an event, what the next
    `prev` hashes. `payload(signature)` is `canonical({**body, "sig": ...})`: members sort the
    same with or without `sig`, so the members before and after it are kept as text and the
    published bytes are joined around the signature instead of serialising the body again.
    """

    signed: bytes
    before: str  # the members sorting before "sig", without braces ("" when none)
    after: str  # the members sorting after it

    def payload(self, signature: bytes) -> bytes:
        """The bytes to publish: the body with `sig` (base64 of `signature`) in its place."""
        sig = binascii.b2a_base64(signature, newline=False).decode("ascii")
        parts = [p for p in (self.before, f'"{SIG}":"{sig}"', self.after) if p]
        return ("{" + ",".join(parts) + "}").encode("utf-8")


def prepare(body: dict[str, Any]) -> Unsigned:
    """Serialise a record body (keys are strings) for signing."""
    before = _ENCODER.encode({k: v for k, v in body.items() if k < SIG})[1:-1]
    after = _ENCODER.encode({k: v for k, v in body.items() if k > SIG})[1:-1]
    if SIG in body:  # re-signing: the old signature is signed over, then replaced
        signed = canonical(body)
    else:
        signed = ("{" + ",".join(p for p in (before, after) if p) + "}").encode("utf-8")
    return Unsigned(signed, before, after)


def chain_head(body: dict[str, Any], unsigned: Unsigned) -> ChainHead:
    """The chain head after an event: its `seq` and the hash of its signed bytes."""
    seq = body.get("seq")
    return ChainHead(
        seq if isinstance(seq, int) else 0, hashlib.sha256(unsigned.signed).hexdigest()
    )


def signed_hash(payload: bytes) -> str:
    """SHA-256 of an event's signed bytes (the payload without `sig`): the next `prev`."""
    obj = json.loads(payload)
    obj.pop("sig", None)
    return hashlib.sha256(canonical(obj)).hexdigest()
