"""agent/records/envelope.py and signing.py: the bytes must be exactly what SPEC defines."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.records.envelope import ChainHead, canonical, chain_head, prepare
from agent.records.signing import PARALLEL_MIN, sign_all, sign_event, sign_reject
from agent.records.verify import verify_chain

BODIES: list[dict[str, Any]] = [
    {},
    {"a": 1},
    {"z": 1},
    {"sif": "before", "sih": "after", "si": None, "sigma": [1, "二"]},
    {"sig": "an old signature", "v": 1},  # re-signing: the old one is signed over
    {
        "v": 1,
        "id": "0c7a3f0e-2b1d-4e5f-8a9b-0c1d2e3f4a5b",
        "device": "d1",
        "site": "s1",
        "ts": "2027-01-15T08:00:00.123+00:00",
        "op": "dispense",
        "code": "81234560000000011234",
        "kind": "cn20",
        "level": "unit",
        "fields": {"product_code": "8123456", "serial": "000000001", "sig": "nested"},
        "doc": None,
        "seq": 7,
        "prev": "0" * 64,
        "message": '药品已过期 "quoted" \u2028 \\',
    },
]


def _spec_bytes(body: dict[str, Any], key: Ed25519PrivateKey) -> tuple[bytes, bytes]:
    """What SPEC defines, spelled out: sign the canonical body, publish it with `sig`."""
    signed = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    sig = base64.b64encode(key.sign(signed)).decode()
    payload = {**body, "sig": sig}
    return signed, json.dumps(
        payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()


@pytest.mark.parametrize("body", BODIES)
def test_serialised_once_yet_byte_identical_to_spec(body: dict[str, Any]) -> None:
    key = Ed25519PrivateKey.generate()
    signed, payload = _spec_bytes(body, key)
    unsigned = prepare(body)
    assert unsigned.signed == signed == canonical(body)
    assert unsigned.payload(key.sign(signed)) == payload
    assert sign_reject(body, key) == payload


@pytest.mark.parametrize("n", [0, 1, PARALLEL_MIN - 1, PARALLEL_MIN, 101])
def test_signing_a_batch_on_several_threads_gives_the_same_bytes(n: int) -> None:
    key = Ed25519PrivateKey.generate()
    bodies = [{"v": 1, "seq": i + 1, "code": f"{81234560000000000000 + i}"} for i in range(n)]
    expected = [_spec_bytes(b, key)[1] for b in bodies]
    assert sign_all([prepare(b) for b in bodies], key) == expected


def test_a_chain_signed_in_parallel_verifies() -> None:
    key = Ed25519PrivateKey.generate()
    head = ChainHead()
    drafts = []
    for i in range(3 * PARALLEL_MIN):
        body = {"v": 1, "seq": head.seq + 1, "prev": head.hash, "code": str(i)}
        unsigned = prepare(body)
        head = chain_head(body, unsigned)
        drafts.append(unsigned)
        assert sign_event(body, key).head == head
    report = verify_chain(sign_all(drafts, key), key.public_key())
    assert report.ok, report.problems
    assert report.last_seq == 3 * PARALLEL_MIN
