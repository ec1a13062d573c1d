"""Store fixtures: real keys, real signed events, real SQLite files."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.records.envelope import ChainHead
from agent.records.signing import sign_event
from agent.store import NewRecord, Sealer, Store

EventMaker = Callable[[int], tuple[list[NewRecord], ChainHead]]


@pytest.fixture
def sealer() -> Sealer:
    return Sealer(os.urandom(32))


@pytest.fixture
def signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def store(tmp_path: Path, sealer: Sealer) -> Iterator[Store]:
    s = Store(tmp_path, sealer, index_key=os.urandom(32))
    yield s
    s.close()


def make_events(
    store: Store, key: Ed25519PrivateKey, n: int, code_base: int = 81234560000000000000
) -> tuple[list[NewRecord], ChainHead]:
    """`n` real signed events continuing the store's chain."""
    head = store.head
    records = []
    for _ in range(n):
        seq = head.seq + 1
        body = {"v": 1, "seq": seq, "prev": head.hash, "code": str(code_base + seq * 10000)}
        sealed = sign_event(body, key)
        head = sealed.head
        records.append(NewRecord("event", sealed.payload, seq))
    return records, head


def stored(data_dir: Path, sealer: Sealer, key: Ed25519PrivateKey, n: int) -> None:
    """A store under `data_dir` that committed `n` events and was closed."""
    store = Store(data_dir, sealer)
    events, head = make_events(store, key, n)
    store.write(events, head)
    store.close()
