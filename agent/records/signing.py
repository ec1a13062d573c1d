"""Ed25519 signatures over canonical record bytes, one record or a batch on several threads."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.records.envelope import ChainHead, Unsigned, chain_head, prepare


@dataclass(frozen=True, slots=True)
class SealedEvent:
    """A signed event ready to store: the exact bytes to publish and the chain head after it."""

    payload: bytes
    head: ChainHead


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
