"""The uplink against a plain broker: protocol versions and the broker's Receive Maximum."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from pathlib import Path

import pytest

from agent.store import NewRecord, Sealer, Store, keys
from agent.uplink.client import Uplink
from hardware_sim.broker import LocalBroker
from hardware_sim.netfault import NetFault
from hardware_sim.subscriber import Recorder
from hardware_sim.workload import unit_codes
from tests.harness import InProcessAgent
from tests.uplink.conftest import Driven, agent_config, events_by_seq


def test_receive_maximum_below_our_window_is_respected(tmp_path: Path, driven: Driven) -> None:
    # mosquitto disconnects an MQTT 5 client that exceeds the Receive Maximum it announced;
    # one connection for the whole run proves the uplink never did.
    with LocalBroker(extra="max_inflight_messages 3") as broker:
        recorder = Recorder("127.0.0.1", broker.port, "tracescan/v1/#")
        try:
            agent: InProcessAgent = driven(agent_config(tmp_path / "a", broker.port, inflight=20))
            agent.feed(unit_codes(500))
            assert recorder.wait_for(lambda r: len(events_by_seq(r.messages)) == 500)
            assert agent.uplink.connect_attempts == 1
            assert len(agent.uplink.losses) == 0
            agent.close()
        finally:
            recorder.close()


def test_mqtt_3_1_1_delivers_and_says_goodbye(tmp_path: Path, driven: Driven) -> None:
    with LocalBroker() as broker:
        recorder = Recorder("127.0.0.1", broker.port, "tracescan/v1/#")
        try:
            agent: InProcessAgent = driven(
                agent_config(tmp_path / "a", broker.port, protocol="3.1.1")
            )
            agent.feed(unit_codes(200))
            assert recorder.wait_for(lambda r: len(events_by_seq(r.messages)) == 200)
            agent.close()
            assert recorder.wait_for(
                lambda r: json.loads(r.on("status")[-1].payload) == {"online": False}
            )
        finally:
            recorder.close()
    assert sorted(events_by_seq(recorder.messages)) == list(range(1, 201))


def test_will_says_offline_when_the_link_dies(tmp_path: Path, driven: Driven) -> None:
    with LocalBroker() as broker, NetFault(broker.port) as proxy:
        recorder = Recorder("127.0.0.1", broker.port, "tracescan/v1/#")
        try:
            agent: InProcessAgent = driven(agent_config(tmp_path / "a", proxy.port, keepalive=2))
            assert recorder.wait_for(lambda r: len(r.on("status")) >= 1)
            assert json.loads(recorder.on("status")[0].payload)["online"] is True
            proxy.refuse(True)
            proxy.blackhole(True)  # the broker hears nothing more: its keepalive fires the will
            assert recorder.wait_for(
                lambda r: json.loads(r.on("status")[-1].payload) == {"online": False}, timeout=10
            )
            # The uplink's own dead-link timer (1.5x keepalive) runs beside the broker's: wait.
            deadline = time.monotonic() + 10
            while not agent.uplink.losses and time.monotonic() < deadline:
                time.sleep(0.05)
            assert agent.uplink.losses, "the uplink noticed the dead link too"
        finally:
            recorder.close()


def test_an_unexpected_error_ends_one_cycle_not_the_uplink(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = agent_config(tmp_path / "a", 1)
    ring = keys.load(cfg.device.key_dir)
    sealer = Sealer(ring.data)
    cfg.device.data_dir.mkdir(mode=0o700, parents=True)
    store = Store(cfg.device.data_dir, sealer)
    reported: list[list[int]] = []

    def on_acked(rids: list[int], published: list[int]) -> None:
        reported.append(rids)
        if len(reported) == 1:
            raise RuntimeError("the daemon's inbox is gone")  # the first report fails

    def commit(first: int, n: int) -> None:
        store.write(
            [
                NewRecord("event", json.dumps({"seq": s}).encode(), s)
                for s in range(first, first + n)
            ],
            None,
        )

    stop = threading.Event()
    with LocalBroker() as broker:
        recorder = Recorder("127.0.0.1", broker.port, "tracescan/v1/#")
        mqtt_cfg = dataclasses.replace(cfg.mqtt, port=broker.port)
        uplink = Uplink(mqtt_cfg, cfg.device, sealer, on_acked, stop)
        try:
            commit(1, 10)
            uplink.start()
            assert recorder.wait_for(lambda r: len(events_by_seq(r.messages)) == 10)
            deadline = time.monotonic() + 10
            while uplink.connect_attempts < 2 and time.monotonic() < deadline:
                time.sleep(0.02)  # the failed report ended the first cycle; a second one begins
            assert uplink.connected.wait(10)
            commit(11, 10)
            uplink.notify()
            assert recorder.wait_for(lambda r: len(events_by_seq(r.messages)) == 20)
        finally:
            stop.set()
            uplink.finish(5)
            recorder.close()
            store.close()
    assert "unexpected failure" in caplog.text
    assert uplink.connect_attempts >= 2
    assert not uplink.is_alive()


def test_default_client_ids_of_two_devices_never_collide(
    tmp_path: Path, broker: LocalBroker, plain_recorder: Recorder, driven: Driven
) -> None:
    # `a-b`/`c` and `a`/`b-c` are two devices; an id that joins site and device with a
    # character both may contain makes them one client, and each connection pushes the other
    # off the broker.
    first = driven(agent_config(tmp_path / "1", broker.port, site="a-b", device="c"))
    assert first.uplink.connected.wait(10)
    second = driven(agent_config(tmp_path / "2", broker.port, site="a", device="b-c"))
    assert second.uplink.connected.wait(10)
    first.feed(unit_codes(5))
    second.feed(unit_codes(5))
    both = {"tracescan/v1/a-b/c/event", "tracescan/v1/a/b-c/event"}
    assert plain_recorder.wait_for(
        lambda r: all(len([m for m in r.on("event") if m.topic == t]) == 5 for t in both)
    )
    # Each delivered over its first connection: neither was ever pushed off.
    assert (first.uplink.connect_attempts, second.uplink.connect_attempts) == (1, 1)
