"""The event envelope of SPEC.md: canonical bytes, Ed25519 signature and the hash chain."""

from __future__ import annotations

import binascii
import datetime as dt
import hashlib
import json
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

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
class SealedEvent:
    """A signed event ready to store: the exact bytes to publish and the chain head after it."""

    payload: bytes
    head: ChainHead


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


def sign_event(body: dict[str, Any], key: Ed25519PrivateKey) -> SealedEvent:
    """Sign an event body (which must carry `seq` and `prev`) and compute the new head."""
    unsigned = prepare(body)
    return SealedEvent(unsigned.payload(key.sign(unsigned.signed)), chain_head(body, unsigned))


def sign_reject(body: dict[str, Any], key: Ed25519PrivateKey) -> bytes:
    """Sign a reject record (no seq, no prev: rejects are outside the chain)."""
    unsigned = prepare(body)
    return unsigned.payload(key.sign(unsigned.signed))


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


#: Fewer records than this are signed on the calling thread: the hand-off to a helper thread
#: costs about as much as it saves at 16 (measured on a 2-vCPU VM).
PARALLEL_MIN: Final = 24
_HELPERS: Final = min(3, _cpus() - 1)  # signing threads besides the caller
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _signer_pool() -> ThreadPoolExecutor:
    global _pool  # noqa: PLW0603 - one process-wide pool, started on first use
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(_HELPERS, thread_name_prefix="sign")
        return _pool


def _signatures(items: Sequence[Unsigned], key: Ed25519PrivateKey) -> list[bytes]:
    return [key.sign(u.signed) for u in items]


def sign_all(items: Sequence[Unsigned], key: Ed25519PrivateKey) -> list[bytes]:
    """The published bytes of each record, in order.

    Ed25519 signatures are deterministic and `cryptography` releases the GIL while signing,
    so `PARALLEL_MIN` or more records are split between the calling thread and helper
    threads (one per further CPU, at most three); the bytes are the same either way.
    """
    if _HELPERS < 1 or len(items) < PARALLEL_MIN:
        sigs = _signatures(items, key)
    else:
        step = -(-len(items) // (_HELPERS + 1))  # ceiling: the caller takes the first chunk
        pool = _signer_pool()
        helpers = [
            pool.submit(_signatures, items[i : i + step], key)
            for i in range(step, len(items), step)
        ]
        sigs = _signatures(items[:step], key)
        for done in helpers:
            sigs += done.result()
    return [u.payload(sig) for u, sig in zip(items, sigs, strict=True)]
