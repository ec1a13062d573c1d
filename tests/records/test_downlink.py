"""agent/records/downlink.py: a downlink envelope is opened only with the pinned key."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.records.downlink import MAX_VERSION, Refused, open_envelope
from agent.records.signing import sign_reject
from agent.rules.limits import JsonLimits

KEY = Ed25519PrivateKey.generate()


def _signed(key: Ed25519PrivateKey = KEY, **changes: Any) -> bytes:
    obj: dict[str, Any] = {
        "v": 1,
        "kind": "blocklist",
        "version": 3,
        "site": "s1",
        "device": "d1",
        "issued": "2026-11-26T08:00:00+00:00",
        "body": {"entries": []},
    }
    obj.update(changes)
    return sign_reject({k: v for k, v in obj.items() if v is not None}, key)


def _open(payload: bytes, **kw: Any) -> Any:
    return open_envelope(payload, KEY.public_key(), site="s1", device="d1", **kw)


def test_a_signed_envelope_for_this_device_or_its_whole_site_opens() -> None:
    env = _open(_signed())
    assert (env.kind, env.version, env.body) == ("blocklist", 3, {"entries": []})
    assert _open(_signed(device="*")).device == "*"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b'{"v": 1, "kind": "blocklist", "version": 3}', "unsigned"),
        (_signed(Ed25519PrivateKey.generate()), "bad_signature"),
        (_signed(site="s2"), "misaddressed"),
        (_signed(device="d2"), "misaddressed"),
        (_signed(version=0), "bad_version"),
        (_signed(version=MAX_VERSION + 1), "bad_version"),
        (_signed(version=2**63 - 1), "bad_version"),
        (_signed(version=True), "bad_version"),
        (_signed(version="7"), "bad_version"),
        (_signed(body=[1]), "malformed"),
        (_signed(issued="yesterday"), "malformed"),
        (_signed(issued="2026-11-26T08:00:00"), "malformed"),
        (_signed(kind="a\nforged log line"), "malformed"),
        (_signed(v=2), "malformed"),
        (b"[" * 50_000, "malformed"),
        (b"\xff\xfe not utf-8", "malformed"),
        (b"[1, 2]", "malformed"),
    ],
)
def test_every_bad_envelope_is_refused_with_its_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(Refused) as refused:
        _open(payload)
    assert refused.value.reason == reason


def test_a_tampered_body_breaks_the_signature() -> None:
    good = _signed(body={"entries": [{"type": "code", "value": "x", "reason": "recall"}]})
    with pytest.raises(Refused, match="bad_signature"):
        _open(good.replace(b"recall", b"nothin"))


def test_size_is_bounded_before_parsing() -> None:
    with pytest.raises(Refused, match="more than 1024"):
        _open(_signed(body={"pad": "x" * 2000}), limits=JsonLimits(max_bytes=1024))
