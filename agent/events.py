"""The event envelope of SPEC.md: canonical bytes, Ed25519 signature and the hash chain."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

ZERO_HASH: Final = "0" * 64
VERSION: Final = 1


def canonical(obj: dict[str, Any]) -> bytes:
    """SPEC's serialisation: sorted keys, no spaces, UTF-8."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def rfc3339(epoch: float) -> str:
    """Scan time as RFC 3339 with an explicit UTC offset, millisecond precision."""
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True, slots=True)
class ChainHead:
    """The last committed `seq` and the hash of its signed bytes."""

    seq: int = 0
    hash: str = ZERO_HASH


@dataclass(frozen=True, slots=True)
class SealedEvent:
    """A signed event ready to store: the exact bytes to publish and the chain head after it."""

    payload: bytes
    head: ChainHead


def sign_event(body: dict[str, Any], key: Ed25519PrivateKey) -> SealedEvent:
    """Sign an event body (which must carry `seq` and `prev`) and compute the new head."""
    signed = canonical(body)
    sig = base64.b64encode(key.sign(signed)).decode("ascii")
    payload = canonical({**body, "sig": sig})
    seq = body.get("seq")
    head = ChainHead(seq if isinstance(seq, int) else 0, hashlib.sha256(signed).hexdigest())
    return SealedEvent(payload, head)


def sign_reject(body: dict[str, Any], key: Ed25519PrivateKey) -> bytes:
    """Sign a reject record (no seq, no prev: rejects are outside the chain)."""
    sig = base64.b64encode(key.sign(canonical(body))).decode("ascii")
    return canonical({**body, "sig": sig})
