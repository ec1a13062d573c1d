"""The device's end of the central ledger's acknowledgements, over a real mosquitto with real
Ed25519 keys: with `[central] public_key` set an event is done only when central's signed
`cmd/ack` covers it; until then it is published again, byte-identical, after `ack_timeout` and
whenever a signed `cmd/resend` asks; anything not signed by the pinned key is refused with an
alert and changes nothing. The acks and resends are made by the ledger's own functions."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.publish as publish
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.config import Config, load
from agent.ops.status import Status, StatusSource
from central.acks import ack_payload, resend_payload
from hardware_sim.broker import LocalBroker
from hardware_sim.subscriber import Recorder
from hardware_sim.workload import unit_codes
from tests.harness import InProcessAgent, config_file, wait_until
from tests.uplink.conftest import Driven, events_by_seq

SITE, DEVICE = "site-01", "dev-a"
CMD = f"tracescan/v1/{SITE}/{DEVICE}/cmd"
CENTRAL = Ed25519PrivateKey.generate()
CENTRAL_PUBLIC = base64.b64encode(CENTRAL.public_key().public_bytes_raw()).decode()


def _config(home: Path, port: int, ack_timeout: float) -> Config:
    return load(
        config_file(
            home,
            mqtt_port=port,
            device_id=DEVICE,
            site=SITE,
            central={"public_key": CENTRAL_PUBLIC, "ack_timeout": ack_timeout},
        )
    )


def _status(agent: InProcessAgent) -> Status:
    source = StatusSource(agent.config.device.data_dir, agent.agent.sealer, central=True)
    return source.gather(agent.config.status, time.time())


def _ack(broker: LocalBroker, through: int, key: Ed25519PrivateKey = CENTRAL) -> None:
    payload = ack_payload(key, SITE, DEVICE, through, time.time())
    publish.single(f"{CMD}/ack", payload, qos=1, retain=True, port=broker.port)


def _resend(broker: LocalBroker, ranges: list[tuple[int, int]]) -> None:
    payload = resend_payload(CENTRAL, SITE, DEVICE, ranges, time.time())
    publish.single(f"{CMD}/resend", payload, qos=1, port=broker.port)


def _seqs(recorder: Recorder) -> list[int]:
    return [json.loads(m.payload)["seq"] for m in recorder.on("event")]


@pytest.fixture
def events(broker: LocalBroker) -> Iterator[Recorder]:
    """Everything the device publishes."""
    r = Recorder("127.0.0.1", broker.port, f"tracescan/v1/{SITE}/{DEVICE}/#")
    yield r
    r.close()


def test_events_wait_for_the_signed_ack_and_are_published_again_byte_identical_until_then(
    tmp_path: Path, broker: LocalBroker, events: Recorder, driven: Driven
) -> None:
    agent = driven(_config(tmp_path, broker.port, ack_timeout=1.0))
    agent.feed(unit_codes(20))
    # the broker took them; no ledger answers: after the timeout only the lowest goes out
    # again (a probe), not the whole backlog into the queue of a ledger that may be down
    assert events.wait_for(lambda r: len(_seqs(r)) >= 22), len(_seqs(events))
    assert set(_seqs(events)[20:]) == {1}
    assert sorted(events_by_seq(events.messages)) == list(range(1, 21))  # byte-identical
    st = _status(agent)
    assert (st.unsent, st.awaiting_confirmation, st.confirmed_through) == (20, 20, None)
    figures = st.operations["dispense"]
    assert (figures.accepted, figures.uploaded, figures.confirmed) == (20, 20, 0)

    # the ledger is alive and stops at 12: the rest was lost, and goes out again in full
    before = len(_seqs(events))
    _ack(broker, 12)
    assert wait_until(lambda: _status(agent).unsent == 8)
    st = _status(agent)
    assert (st.confirmed_through, st.operations["dispense"].confirmed) == (12, 12)
    assert events.wait_for(lambda r: set(range(13, 21)) <= set(_seqs(r)[before:]))
    assert sorted(events_by_seq(events.messages)) == list(range(1, 21))
    _ack(broker, 20)
    assert wait_until(lambda: _status(agent).unsent == 0)
    st = _status(agent)
    assert (st.confirmed_through, st.awaiting_confirmation) == (20, 0)
    assert st.operations["dispense"].confirm_rate == 1.0
    time.sleep(1.5)  # a re-publication decided before the ack may still be on its way
    settled = len(events.on("event"))
    time.sleep(3.0)  # three ack timeouts: nothing confirmed is published again
    assert len(events.on("event")) == settled


def test_a_signed_resend_publishes_exactly_the_asked_numbers_again(
    tmp_path: Path, broker: LocalBroker, events: Recorder, driven: Driven
) -> None:
    agent = driven(_config(tmp_path, broker.port, ack_timeout=600))
    agent.feed(unit_codes(30))
    assert events.wait_for(lambda r: len(_seqs(r)) == 30)
    assert wait_until(lambda: _status(agent).awaiting_confirmation == 30)
    _ack(broker, 2)
    assert wait_until(lambda: _status(agent).confirmed_through == 2)
    # 1..2 are confirmed (not sent again); 9000.. do not exist (nothing, no failure)
    _resend(broker, [(1, 5), (20, 20), (9000, 9999)])
    assert events.wait_for(lambda r: len(_seqs(r)) == 34)
    time.sleep(0.5)
    assert sorted(_seqs(events)[30:]) == [3, 4, 5, 20]
    assert sorted(events_by_seq(events.messages)) == list(range(1, 31))


def test_commands_not_signed_by_the_pinned_key_for_this_device_are_refused_with_an_alert(
    tmp_path: Path, broker: LocalBroker, events: Recorder, driven: Driven
) -> None:
    agent = driven(_config(tmp_path, broker.port, ack_timeout=600))
    agent.feed(unit_codes(5))
    assert wait_until(lambda: _status(agent).awaiting_confirmation == 5)
    forger = Ed25519PrivateKey.generate()
    other = json.loads(ack_payload(CENTRAL, SITE, "dev-b", 99, time.time()))
    unsigned = json.loads(ack_payload(CENTRAL, SITE, DEVICE, 99, 0))
    del unsigned["sig"]
    hostile = [
        ("ack", ack_payload(forger, SITE, DEVICE, 99, time.time())),  # another key
        ("ack", json.dumps(unsigned).encode()),
        ("ack", json.dumps(other).encode()),  # signed, for another device
        ("ack", b"\xff\xfe not json"),
        ("ack", b"[" * 100_000),
        ("ack", ack_payload(CENTRAL, SITE, DEVICE, -1, time.time())),
        ("resend", resend_payload(forger, SITE, DEVICE, [(1, 5)], time.time())),
        ("resend", resend_payload(CENTRAL, SITE, DEVICE, [(5, 1)], time.time())),
        ("resend", resend_payload(CENTRAL, SITE, DEVICE, [(1, 1)] * 1000, time.time())),
    ]
    for kind, payload in hostile:
        publish.single(f"{CMD}/{kind}", payload, qos=1, port=broker.port)
    assert events.wait_for(lambda r: len(r.on("alert")) >= len(hostile))
    time.sleep(0.5)
    alerts = [json.loads(m.payload)["alert"] for m in events.on("alert")]
    assert len(alerts) == len(hostile), alerts
    assert all(a.startswith(f"central command on {CMD}/") for a in alerts)
    assert any("not signed by the pinned central key" in a for a in alerts)
    assert any("for another device" in a for a in alerts)
    st = _status(agent)
    assert (st.confirmed_through, st.awaiting_confirmation) == (None, 5)
    assert len(_seqs(events)) == 5  # no resend was obeyed
    assert agent.uplink.is_alive()
    _ack(broker, 5)  # the real one still works
    assert wait_until(lambda: _status(agent).unsent == 0)


def test_confirmation_survives_a_restart_and_what_is_unconfirmed_goes_out_again(
    tmp_path: Path, broker: LocalBroker, events: Recorder
) -> None:
    cfg = _config(tmp_path, broker.port, ack_timeout=1.0)
    agent = InProcessAgent(cfg, threaded=True).start()
    try:
        agent.feed(unit_codes(10))
        assert wait_until(lambda: _status(agent).awaiting_confirmation == 10)
        _ack(broker, 4)
        assert wait_until(lambda: _status(agent).confirmed_through == 4)
    finally:
        agent.close()
    publish.single(f"{CMD}/ack", b"", qos=1, retain=True, port=broker.port)  # the ack is gone
    events.messages.clear()
    again = InProcessAgent(cfg, threaded=True).start()
    try:
        st = _status(again)
        assert (st.confirmed_through, st.unsent, st.awaiting_confirmation) == (4, 6, 6)
        assert events.wait_for(lambda r: bool(_seqs(r)))
        assert set(_seqs(events)) == {5}  # the probe: the one right after central's through
        _ack(broker, 5)  # a running ledger stores it and moves on: the rest follows
        assert events.wait_for(lambda r: set(_seqs(r)) == set(range(5, 11)))
    finally:
        again.close()
