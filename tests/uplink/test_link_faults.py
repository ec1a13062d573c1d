"""Bad networks between the agent and the broker: flapping, blackholes, outages, restarts."""

from __future__ import annotations

import json
import logging
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from agent.records.verify import public_key_from_b64, verify_chain
from agent.uplink.client import dead_link_after
from hardware_sim.broker import LocalBroker, free_port
from hardware_sim.netfault import NetFault
from hardware_sim.subscriber import Recorder
from hardware_sim.workload import unit_codes
from tests.harness import InProcessAgent
from tests.uplink.conftest import Driven, agent_config, events_by_seq

# The recorder must never be the reason a message goes missing: no broker-side queue limit.
_ROOMY = "max_queued_messages 0"


@pytest.fixture
def roomy_broker(tmp_path: Path) -> Iterator[LocalBroker]:
    """A persistent mosquitto that queues without limit for slow subscribers."""
    workdir = tmp_path / "broker"
    workdir.mkdir()
    b = LocalBroker(workdir=workdir, persistence=True, extra=_ROOMY).start()
    yield b
    b.close()


@pytest.fixture
def recorder(roomy_broker: LocalBroker) -> Iterator[Recorder]:
    """A persistent-session subscriber to every device, connected straight to the broker."""
    r = Recorder("127.0.0.1", roomy_broker.port, "tracescan/v1/#")
    yield r
    r.close()


@pytest.fixture
def proxy(roomy_broker: LocalBroker) -> Iterator[NetFault]:
    """The fault proxy in front of the broker; the agent connects through it."""
    with NetFault(roomy_broker.port) as p:
        yield p


def _delivered(r: Recorder, n: int) -> bool:
    return len(events_by_seq(r.messages)) >= n


def test_flapping_link_delivers_every_event_gapless(
    tmp_path: Path, proxy: NetFault, recorder: Recorder, driven: Driven
) -> None:
    total = 10_000
    agent: InProcessAgent = driven(agent_config(tmp_path / "a", proxy.port))
    proxy.flap(0.5, 3.0, seed=5)
    codes = unit_codes(total)
    # Scans keep arriving while the link flaps: twenty bursts over ~8 s.
    for i in range(20):
        agent.feed(codes[i * 500 : (i + 1) * 500])
        time.sleep(0.4)
    assert recorder.wait_for(lambda r: _delivered(r, total), timeout=40)
    proxy.steady()
    events = events_by_seq(recorder.messages)  # asserts duplicates are byte-identical
    assert sorted(events) == list(range(1, total + 1))
    # The receiver's own check, with the device's public key alone: signatures and hash chain.
    assert agent.agent is not None
    public = public_key_from_b64(agent.agent.keys.public_b64())
    report = verify_chain((events[s] for s in sorted(events)), public)
    assert report.ok, report.problems[:5]
    assert proxy.stats.cuts >= 3
    assert agent.uplink.connect_attempts >= 3


def test_blackhole_is_detected_within_two_keepalives_and_recovered(
    tmp_path: Path, proxy: NetFault, recorder: Recorder, driven: Driven
) -> None:
    keepalive = 3
    agent: InProcessAgent = driven(agent_config(tmp_path / "a", proxy.port, keepalive=keepalive))
    codes = unit_codes(20)
    agent.feed(codes[:10])
    assert recorder.wait_for(lambda r: _delivered(r, 10))
    losses_before = len(agent.uplink.losses)
    proxy.blackhole(True)
    silent_since = time.monotonic()
    agent.feed(codes[10:])  # these wait in flight, never acknowledged
    deadline = silent_since + 4 * keepalive
    while len(agent.uplink.losses) == losses_before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(agent.uplink.losses) > losses_before, "the dead link was never noticed"
    detected_after = agent.uplink.losses[losses_before] - silent_since
    # The acceptance bound of the issue (the uplink's own rule is 1.5x keepalive of silence).
    assert detected_after <= 2 * keepalive, f"dead link noticed after {detected_after:.2f} s"
    assert dead_link_after(keepalive) < 2 * keepalive
    proxy.blackhole(False)
    assert recorder.wait_for(lambda r: _delivered(r, 20))
    assert sorted(events_by_seq(recorder.messages)) == list(range(1, 21))
    assert agent.uplink.connected.wait(10)


def test_broker_restart_with_persistence_loses_nothing(
    tmp_path: Path, roomy_broker: LocalBroker, recorder: Recorder, driven: Driven
) -> None:
    agent: InProcessAgent = driven(agent_config(tmp_path / "a", roomy_broker.port))
    codes = unit_codes(1500)
    agent.feed(codes[:500])
    assert recorder.wait_for(lambda r: len(r.on("event")) >= 100)
    roomy_broker.stop()  # SIGTERM: mosquitto writes its persistence file
    agent.feed(codes[500:1000])
    time.sleep(0.5)
    roomy_broker.start()  # same port, same persistence file
    agent.feed(codes[1000:])
    assert recorder.wait_for(lambda r: _delivered(r, 1500), timeout=30)
    assert sorted(events_by_seq(recorder.messages)) == list(range(1, 1501))
    assert agent.uplink.connect_attempts >= 2


def _most_attempts(window_s: float, initial: float, cap: float) -> int:
    """A generous upper bound on reconnect attempts the full-jitter schedule allows in a window.

    Delays are uniform in [0, min(cap, initial * 2**n)]: the ramp to the cap is short, then the
    mean delay is cap/2. Counting as if every delay were cap/4 leaves a wide margin for jitter
    (the chance to exceed it is below one in a million), while a storm is orders beyond it.
    """
    ramp = 0
    while initial * 2**ramp < cap:
        ramp += 1
    return ramp + 1 + int(window_s / (cap / 4))


def test_outage_reconnects_follow_the_backoff_schedule_without_a_storm(
    tmp_path: Path, proxy: NetFault, recorder: Recorder, driven: Driven
) -> None:
    initial, cap, outage = 0.05, 0.8, 6.0
    agent: InProcessAgent = driven(
        agent_config(tmp_path / "a", proxy.port, backoff_initial=initial, backoff_max=cap)
    )
    codes = unit_codes(40)
    agent.feed(codes[:20])
    assert recorder.wait_for(lambda r: _delivered(r, 20))
    # The broker's side goes away: every connection is accepted and dropped at once, the
    # case where a naive reconnect loop spins hardest.
    proxy.refuse(True)
    proxy.cut()
    before = agent.uplink.connect_attempts
    agent.feed(codes[20:])
    time.sleep(outage)
    attempts = agent.uplink.connect_attempts - before
    proxy.refuse(False)
    assert 3 <= attempts <= _most_attempts(outage, initial, cap), attempts
    assert proxy.stats.refused >= attempts - 1
    assert recorder.wait_for(lambda r: _delivered(r, 40))
    assert sorted(events_by_seq(recorder.messages)) == list(range(1, 41))


def test_live_scans_overtake_a_backlog_being_drained(
    tmp_path: Path, proxy: NetFault, recorder: Recorder, driven: Driven
) -> None:
    backlog_n = 1500
    proxy.refuse(True)  # offline while the backlog builds up
    agent: InProcessAgent = driven(agent_config(tmp_path / "a", proxy.port))
    codes = unit_codes(backlog_n + 1)
    agent.feed(codes[:backlog_n])
    while agent.pending():
        time.sleep(0.05)
    proxy.set_bandwidth(150_000)  # a slow uplink: the backlog takes seconds to drain
    proxy.refuse(False)
    assert recorder.wait_for(lambda r: len(r.on("event")) >= 100, timeout=20)
    agent.feed(codes[backlog_n:])  # one live scan, seq backlog_n + 1
    live_seq = backlog_n + 1

    def live_arrived(r: Recorder) -> bool:
        return any(json.loads(m.payload)["seq"] == live_seq for m in r.on("event"))

    assert recorder.wait_for(live_arrived, timeout=20)
    arrived = [json.loads(m.payload)["seq"] for m in recorder.on("event")]
    position = arrived.index(live_seq)
    proxy.set_bandwidth(None)
    assert recorder.wait_for(lambda r: _delivered(r, backlog_n + 1), timeout=20)
    # The live event went out while most of the backlog was still waiting, not after it.
    assert position < backlog_n // 2, position
    later_backlog = [s for s in recorder_seqs(recorder)[position + 1 :] if s < live_seq]
    assert later_backlog, "the backlog was already drained: nothing was overtaken"
    assert sorted(events_by_seq(recorder.messages)) == list(range(1, backlog_n + 2))


def recorder_seqs(r: Recorder) -> list[int]:
    """seq of every event in arrival order (duplicates included)."""
    return [json.loads(m.payload)["seq"] for m in r.on("event")]


def test_password_is_never_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, driven: Driven
) -> None:
    secret = "S3cret-Pa55-never-logged"
    passwords = tmp_path / "passwd"
    subprocess.run(
        ["mosquitto_passwd", "-c", "-b", str(passwords), "dev-a", secret],
        check=True,
        capture_output=True,
    )
    extra = f"allow_anonymous false\npassword_file {passwords}"
    caplog.set_level(logging.DEBUG)
    with LocalBroker(extra=extra) as broker:
        good = driven(
            agent_config(tmp_path / "good", broker.port, username="dev-a", password=secret)
        )
        bad = driven(
            agent_config(
                tmp_path / "bad", broker.port, device="dev-b", username="dev-a", password="wrong"
            )
        )
        good.feed(unit_codes(3))
        assert good.uplink.connected.wait(10)
        time.sleep(0.5)
        assert not bad.uplink.connected.is_set()
        assert bad.uplink.connect_attempts >= 2
        assert good.config.masked()["mqtt"]["password"] == "***"
        good.close()
        bad.close()
    assert "refused the connection" in caplog.text
    assert secret not in caplog.text
    assert "wrong" not in caplog.text


# --- what an outage looks like in the log (`journalctl -p warning` must see it, once) --------


def _uplink_records(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "agent.uplink.client" and r.levelno == level
    ]


def test_a_broker_unreachable_at_start_is_one_warning_and_its_return_an_info(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, driven: Driven
) -> None:
    caplog.set_level(logging.DEBUG, logger="agent.uplink.client")
    port = free_port()
    agent = driven(agent_config(tmp_path / "a", port, backoff_initial=0.02, backoff_max=0.1))
    deadline = time.monotonic() + 10
    while agent.uplink.connect_attempts < 8 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert agent.uplink.connect_attempts >= 8
    infos = _uplink_records(caplog, logging.INFO)
    assert len(infos) == 1  # the first attempt: could be a blip
    assert "cannot reach broker" in infos[0]
    warnings = _uplink_records(caplog, logging.WARNING)
    assert len(warnings) == 1, warnings  # the second: an outage, said once
    assert f"cannot reach broker 127.0.0.1:{port}" in warnings[0]
    assert "scans wait in the buffer" in warnings[0]
    with LocalBroker(port=port):
        assert agent.uplink.connected.wait(10)
        back = _uplink_records(caplog, logging.INFO)[-1]
        assert back.startswith(f"uplink: connected to 127.0.0.1:{port} again after")
        assert len(_uplink_records(caplog, logging.WARNING)) == 1


def test_a_dropped_connection_is_one_warning_with_its_reason_and_the_reconnect_an_info(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, driven: Driven
) -> None:
    caplog.set_level(logging.DEBUG, logger="agent.uplink.client")
    with LocalBroker() as broker:
        agent = driven(
            agent_config(tmp_path / "a", broker.port, backoff_initial=0.02, backoff_max=0.1)
        )
        assert agent.uplink.connected.wait(10)
        broker.stop()  # the broker goes away; the agent retries a while
        deadline = time.monotonic() + 10
        attempts = agent.uplink.connect_attempts
        while agent.uplink.connect_attempts < attempts + 6 and time.monotonic() < deadline:
            time.sleep(0.05)
        warnings = _uplink_records(caplog, logging.WARNING)
        assert len(warnings) == 1, warnings
        assert warnings[0].startswith(f"uplink: connection to 127.0.0.1:{broker.port} lost (")
        broker.start()
        assert agent.uplink.connected.wait(10)
        assert "again after" in _uplink_records(caplog, logging.INFO)[-1]
        assert len(_uplink_records(caplog, logging.WARNING)) == 1


def test_a_connection_taken_over_by_a_client_with_our_id_names_the_id(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, driven: Driven
) -> None:
    caplog.set_level(logging.INFO, logger="agent.uplink.client")
    with LocalBroker() as broker:
        agent = driven(agent_config(tmp_path / "a", broker.port, client_id="shared-id"))
        assert agent.uplink.connected.wait(10)
        intruder = mqtt.Client(CallbackAPIVersion.VERSION2, "shared-id", protocol=mqtt.MQTTv5)
        intruder.connect("127.0.0.1", broker.port)
        intruder.loop_start()
        try:
            deadline = time.monotonic() + 10
            while not _uplink_records(caplog, logging.WARNING) and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            intruder.loop_stop()
            intruder.disconnect()
        warning = _uplink_records(caplog, logging.WARNING)[0]
        # mosquitto 2.0 closes the socket without saying why; the id lets the operator look.
        assert "lost (the broker closed the connection; client id 'shared-id')" in warning
