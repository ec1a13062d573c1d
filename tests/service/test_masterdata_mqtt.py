"""Master data over MQTT: retained, versioned, applied while scanning, kept across reboots."""

from __future__ import annotations

import json

import paho.mqtt.publish as publish

from hardware_sim.broker import LocalBroker
from hardware_sim.serial_scanner import VirtualSerialScanner
from hardware_sim.subscriber import Recorder
from hardware_sim.workload import trace_code, unit_codes
from tests.harness import AgentProcess

MASTER = "tracescan/v1/site-01/station-01/master"


def _ready(agent: AgentProcess) -> None:
    assert agent.wait_for(lambda a: any("reading" in ln for ln in a.stderr)), agent.stderr


def _reasons(recorder: Recorder) -> list[str]:
    return [json.loads(m.payload)["reason"] for m in recorder.on("reject")]


def test_retained_blocklist_and_catalog_apply_while_scanning_and_survive_restart(
    agent: AgentProcess, scanner: VirtualSerialScanner, recorder: Recorder, broker: LocalBroker
) -> None:
    a, c = unit_codes(2, start=4000)
    b = trace_code("8333333", 1)  # not touched by the catalog update below
    agent.start()
    _ready(agent)
    scanner.scan(a)
    assert recorder.wait_for(lambda r: len(r.on("event")) == 1)
    blocklist = {"version": 3, "entries": [{"type": "code", "value": b, "reason": "recall R-77"}]}
    publish.single(
        f"{MASTER}/blocklist", json.dumps(blocklist), qos=1, retain=True, port=broker.port
    )
    assert agent.wait_for(lambda a: any("blocklist version 3 applied" in ln for ln in a.stderr))
    scanner.scan(b)
    assert recorder.wait_for(lambda r: "blocked" in _reasons(r))
    reject = next(json.loads(m.payload) for m in recorder.on("reject") if b"blocked" in m.payload)
    assert "R-77" in reject["message"]
    # a catalog update turns this product into a case code: refused at dispensing
    catalog = {
        "version": 1,
        "entries": [{"code": "8123456", "level": "case", "ratio": 10, "name": "x"}],
    }
    publish.single(f"{MASTER}/catalog", json.dumps(catalog), qos=1, retain=True, port=broker.port)
    assert agent.wait_for(lambda a: any("catalog version 1 applied" in ln for ln in a.stderr)), (
        "\n".join(agent.stderr[-8:])
    )
    assert agent.terminate() == 0
    # offline restart: the broker is gone, the persisted sets still guard the counter
    broker.stop()
    agent.start()
    _ready(agent)
    scanner.scan(b)
    assert agent.wait_for(lambda a: any("blocked" in ln for ln in a.refused())), "\n".join(
        agent.lines + agent.stderr
    )
    scanner.scan("TSC:ACK")
    scanner.scan(c)
    assert agent.wait_for(lambda a: any("level_not_allowed" in ln for ln in a.refused()))
    assert agent.terminate() == 0
