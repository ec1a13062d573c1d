"""agent/uplink/central.py: commands open only with the pinned key; redelivery bookkeeping."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.records.downlink import Refused
from agent.records.signing import sign_reject
from agent.store.acks import AckRuns, Run
from agent.uplink.central import MAX_RANGES, Ack, Redelivery, Resend, open_command

KEY = Ed25519PrivateKey.generate()


def _signed(key: Ed25519PrivateKey = KEY, **fields: Any) -> bytes:
    body: dict[str, Any] = {"v": 1, "site": "s1", "device": "d1", "ts": "2026-11-26T08:00:00Z"}
    body.update(fields)
    return sign_reject(
        {k: v for k, v in body.items() if v is not None}, KEY if key is None else key
    )


def _open(kind: str, payload: bytes) -> Ack | Resend:
    return open_command(kind, payload, KEY.public_key(), site="s1", device="d1")


def test_a_signed_ack_and_resend_for_this_device_open() -> None:
    assert _open("ack", _signed(through=7)) == Ack(7)
    assert _open("resend", _signed(ranges=[[1, 3], [9, 9]])) == Resend(((1, 3), (9, 9)))


@pytest.mark.parametrize(
    ("kind", "payload", "why"),
    [
        ("ack", _signed(Ed25519PrivateKey.generate(), through=7), "bad_signature"),
        ("ack", _signed(through=7, device="d2"), "misaddressed"),
        ("ack", _signed(through=7, site="s2"), "misaddressed"),
        ("ack", _signed(through=7, v=2), "malformed"),
        ("ack", _signed(through=True), "malformed"),
        ("ack", _signed(through=2**53), "malformed"),
        ("ack", _signed(through="7"), "malformed"),
        (
            "ack",
            json.dumps({"v": 1, "site": "s1", "device": "d1", "through": 7}).encode(),
            "unsigned",
        ),
        ("ack", b"\x00\xff", "malformed"),
        ("ack", b"[1, 2]", "malformed"),
        ("ack", b" " * (64 * 1024 + 1), "malformed"),
        ("resend", _signed(ranges=[]), "malformed"),
        ("resend", _signed(ranges=[[3, 1]]), "malformed"),
        ("resend", _signed(ranges=[[0, 1]]), "malformed"),
        ("resend", _signed(ranges=[[1, 2, 3]]), "malformed"),
        ("resend", _signed(ranges=[[1, 1]] * (MAX_RANGES + 1)), "malformed"),
        ("resend", _signed(ranges="1-3"), "malformed"),
    ],
)
def test_everything_else_is_refused_with_its_reason(kind: str, payload: bytes, why: str) -> None:
    with pytest.raises(Refused) as caught:
        _open(kind, payload)
    assert caught.value.reason == why


def test_a_tampered_ack_breaks_the_signature() -> None:
    payload = _signed(through=7).replace(b'"through":7', b'"through":9')
    with pytest.raises(Refused, match="pinned central key"):
        _open("ack", payload)


def _done(*runs: tuple[int, int]) -> AckRuns:
    done = AckRuns()
    for lo, hi in runs:
        done.add(Run(lo, hi, 0.0))
    return done


def test_while_central_is_silent_only_the_lowest_row_is_probed_backing_off() -> None:
    r = Redelivery(ack_timeout=10.0)
    r.published([1, 2, 3, 5], now=0.0)
    r.tick(_done(), now=9.9)
    assert not r.queue
    r.tick(_done((2, 2)), now=10.0)  # 2 was acknowledged meanwhile (no `through` moved here)
    assert list(r.queue) == [(1, 1)]  # the probe; 3 and 5 would only fill a broker queue
    assert r.waiting == 3
    r.queue.clear()
    r.tick(_done((2, 2)), now=29.9)  # the second wait is twice as long
    assert not r.queue
    r.tick(_done((2, 2)), now=30.0)
    assert list(r.queue) == [(1, 1)]
    assert r.republished == 2


def test_once_central_moves_its_through_and_then_stops_the_rest_goes_out_again() -> None:
    r = Redelivery(ack_timeout=10.0)
    r.published(range(1, 101), now=0.0)
    r.tick(_done(), now=10.0)
    assert list(r.queue) == [(1, 1)]
    r.queue.clear()
    # central is catching up on its queue: each move of `through` gives it a timeout more
    for t, through in ((15.0, 40), (22.0, 70), (29.0, 90)):
        r.progressed(t)
        r.tick(_done((1, through)), now=t + 9.9)
        assert not r.queue
    r.tick(_done((1, 90)), now=39.0)  # it stopped short of 91..100: the broker lost them
    assert list(r.queue) == [(91, 100)]
    r.tick(_done((1, 100)), now=1000.0)
    assert r.waiting == 0


def test_the_backoff_is_bounded_and_a_new_connection_starts_over() -> None:
    r = Redelivery(ack_timeout=1.0)
    r.published([1], now=0.0)
    now = 0.0
    for _ in range(20):
        now += 64.0
        r.queue.clear()
        r.tick(_done(), now=now)
        assert list(r.queue) == [(1, 1)]  # never more than 64 timeouts apart
    r.published([7], now=now)  # taken by the broker, not yet recorded by the store
    r.start([Run(1, 1, 0.0), Run(4, 6, 0.0)], now=now)
    assert not r.queue
    r.progressed(now + 0.5)
    r.tick(_done(), now=now + 1.5)
    assert list(r.queue) == [(1, 1), (4, 7)]  # each once


def test_asked_rows_are_queued_at_once_as_runs() -> None:
    r = Redelivery(ack_timeout=60.0)
    r.ask([4, 5, 6, 9])
    assert list(r.queue) == [(4, 6), (9, 9)]
    assert r.republished == 4
