"""agent/records and the per-scan shortcuts: the bytes must be exactly what SPEC defines."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.records.bodies import record_id
from agent.records.envelope import ChainHead, canonical, chain_head, prepare
from agent.records.signing import PARALLEL_MIN, sign_all, sign_event, sign_reject
from agent.records.verify import verify_chain
from agent.rules.double_reads import DoubleReadFilter
from agent.rules.masterdata import BlockEntry, Blocklist

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


def test_record_ids_are_random_version_4_uuids() -> None:
    ids = {record_id() for _ in range(1000)}
    assert len(ids) == 1000
    for text in ids:
        parsed = uuid.UUID(text)
        assert (str(parsed), parsed.version, parsed.variant) == (text, 4, uuid.RFC_4122)


def test_blocklist_reports_the_first_matching_entry_in_list_order() -> None:
    entries = (
        BlockEntry("product", "8123456", "product recall"),
        BlockEntry("code", "81234560000000011234", "stolen pack"),
        BlockEntry("batch", "B1", "batch recall"),
        BlockEntry("code", "81234560000000011234", "listed twice"),
    )
    blocklist = Blocklist(3, entries)
    fields = {"product_code": "8123456", "serial": "000000001"}
    assert blocklist.match("81234560000000011234", fields) is entries[0]
    assert blocklist.match("81234560000000011234", {}) is entries[1]
    assert blocklist.match("x", {"batch": "B1", "gtin": "8123456"}) is entries[0]
    assert blocklist.match("x", {"batch": "B1"}) is entries[2]
    assert blocklist.match("x", {"batch": "B2", "product_code": "8123457"}) is None
    assert Blocklist().match("x", fields) is None
    assert blocklist == Blocklist(3, entries)


def test_double_reads_inside_a_burst_larger_than_the_sweep_size() -> None:
    reads = DoubleReadFilter(window=1.5)
    codes = [f"code-{i}" for i in range(6000)]
    assert not any(reads.repeat("s1", c, 100.0) for c in codes)
    assert all(reads.repeat("s1", c, 100.5) for c in codes[:10])
    # Long after the window, a sweep drops everything older: memory stays bounded.
    for i, c in enumerate(codes):
        reads.repeat("s2", c, 200.0 + i * 0.001)
    assert not reads.repeat("s1", codes[0], 210.0)
    assert len(reads._last) < 6000
