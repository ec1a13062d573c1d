"""Master data over MQTT: signed by the pinned central key, versioned, applied while scanning,
kept across reboots — and every hostile message refused with an alert, never applied, never
fatal (a real agent process, a real mosquitto, real Ed25519 keys)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.publish as publish
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from agent.records.signing import sign_reject
from hardware_sim.broker import LocalBroker
from hardware_sim.serial_scanner import VirtualSerialScanner
from hardware_sim.subscriber import Recorder
from hardware_sim.workload import trace_code, unit_codes
from tests.harness import AgentProcess

SITE, DEVICE = "site-01", "station-01"
MASTER = f"tracescan/v1/{SITE}/{DEVICE}/master"


def _b64(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def envelope(
    key: Ed25519PrivateKey,
    kind: str,
    version: int,
    body: dict[str, Any],
    *,
    site: str = SITE,
    device: str = DEVICE,
) -> bytes:
    """A master-data envelope as SPEC's signed control plane defines it."""
    obj = {
        "v": 1,
        "kind": kind,
        "version": version,
        "site": site,
        "device": device,
        "issued": "2026-11-26T08:00:00+00:00",
        "body": body,
    }
    return sign_reject(obj, key)


def _ready(agent: AgentProcess) -> None:
    assert agent.wait_for(lambda a: any("reading" in ln for ln in a.stderr)), agent.stderr


def _reasons(recorder: Recorder) -> list[str]:
    return [json.loads(m.payload)["reason"] for m in recorder.on("reject")]


def _retain(broker: LocalBroker, path: str, payload: bytes) -> None:
    publish.single(f"{MASTER}/{path}", payload, qos=1, retain=True, port=broker.port)


def _logged(agent: AgentProcess, *parts: str) -> None:
    """Wait for a log line holding every part; fail showing the latest lines."""
    found = agent.wait_for(lambda a: any(all(p in ln for p in parts) for ln in a.stderr))
    assert found, "\n".join(agent.stderr[-6:])


def test_signed_blocklist_and_catalog_apply_while_scanning_and_survive_restart(
    broker: LocalBroker,
    scanner: VirtualSerialScanner,
    recorder: Recorder,
    make_config: Callable[..., Path],
) -> None:
    central = Ed25519PrivateKey.generate()
    cfg = make_config(
        mqtt_port=broker.port, port=scanner.port, central={"public_key": _b64(central)}
    )
    agent = AgentProcess(cfg)
    a, c = unit_codes(2, start=4000)
    b = trace_code("8333333", 1)  # not touched by the catalog update below
    agent.start()
    try:
        _ready(agent)
        scanner.scan(a)
        assert recorder.wait_for(lambda r: len(r.on("event")) == 1)
        blocklist = {"entries": [{"type": "code", "value": b, "reason": "recall R-77"}]}
        _retain(broker, "blocklist", envelope(central, "blocklist", 3, blocklist))
        _logged(agent, "blocklist version 3 applied")
        scanner.scan(b)
        assert recorder.wait_for(lambda r: "blocked" in _reasons(r))
        reject = next(
            json.loads(m.payload) for m in recorder.on("reject") if b"blocked" in m.payload
        )
        assert "R-77" in reject["message"]
        # a catalog update turns this product into a case code: refused at dispensing
        catalog = {"entries": [{"code": "8123456", "level": "case", "ratio": 10, "name": "x"}]}
        _retain(broker, "catalog", envelope(central, "catalog", 1, catalog))
        _logged(agent, "catalog version 1 applied")
        status = json.loads(
            subprocess.run(
                [sys.executable, "-m", "agent", "status", "--json", "--config", str(cfg)],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            ).stdout
        )
        assert status["masterdata"] == {
            "catalog": 1,
            "relations": 0,
            "blocklist": 3,
            "manifest": {},
        }
        assert agent.terminate() == 0
        # offline restart: the broker is gone, the persisted sets still guard the counter
        broker.stop()
        agent.start()
        _ready(agent)
        scanner.scan(b)
        assert agent.wait_for(lambda a: any("blocked" in ln for ln in a.refused()))
        scanner.scan("TSC:ACK")
        scanner.scan(c)
        assert agent.wait_for(lambda a: any("level_not_allowed" in ln for ln in a.refused()))
        assert agent.terminate() == 0
    finally:
        agent.stop()


def test_hostile_master_data_is_refused_with_an_alert_and_scanning_goes_on(
    broker: LocalBroker,
    scanner: VirtualSerialScanner,
    recorder: Recorder,
    make_config: Callable[..., Path],
) -> None:
    central, rogue = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    cfg = make_config(
        mqtt_port=broker.port,
        port=scanner.port,
        central={"public_key": _b64(central)},
        masterdata={"max_bytes": 64 * 1024},
    )
    recalled = trace_code("8123456", 77)
    fanout = {
        f"L{d}-{i}": [f"L{d + 1}-{j}" for j in range(30)] for d in range(4) for i in range(30)
    }
    fanout["CASE"] = [f"L0-{j}" for j in range(30)]  # 3 KB that would expand to 810,000 units
    hostile: dict[str, bytes] = {
        "blocklist": json.dumps({"version": 9, "entries": []}).encode(),  # unsigned
        "catalog": envelope(rogue, "catalog", 5, {"entries": []}),  # another key
        "relations": envelope(central, "relations", 2, {"relations": fanout}),
        "manifest/DN-1": envelope(central, "manifest", 1, {"doc": "DN-1"}, device="other"),
    }
    agent = AgentProcess(cfg).start()
    try:
        _ready(agent)
        for path, payload in hostile.items():
            _retain(broker, path, payload)
        _logged(agent, "master/blocklist refused", "unsigned")
        _logged(agent, "master/catalog refused", "bad_signature")
        _logged(agent, "master/relations refused", "max_case_units")
        _logged(agent, "master/manifest/DN-1 refused", "misaddressed")
        # a version that would freeze every later update, a bomb of brackets, an oversize one
        freeze = envelope(central, "blocklist", 2**63 - 1, {"entries": []})
        _retain(broker, "blocklist", freeze)
        _logged(agent, "master/blocklist refused", "bad_version")
        _retain(broker, "blocklist", b"[" * 60_000)
        _logged(agent, "master/blocklist refused", "nested too deeply")
        big = envelope(central, "blocklist", 4, {"entries": [], "pad": "x" * 70_000})
        _retain(broker, "blocklist", big)
        _logged(agent, "master/blocklist refused", "more than 65536")
        # a later, real recall is applied: nothing above froze or poisoned the set
        recall = {"entries": [{"type": "code", "value": recalled, "reason": "recall R-9"}]}
        _retain(broker, "blocklist", envelope(central, "blocklist", 5, recall))
        _logged(agent, "blocklist version 5 applied")
        scanner.scan(unit_codes(1, start=4100)[0])
        scanner.scan(recalled)
        assert recorder.wait_for(lambda r: len(r.on("event")) == 1 and "blocked" in _reasons(r))
        alerts = [json.loads(m.payload)["alert"] for m in recorder.on("alert")]
        assert len([t for t in alerts if "refused" in t]) == 7
        assert agent.terminate() == 0
    finally:
        agent.stop()


def test_without_a_central_key_unsigned_master_data_needs_explicit_consent(
    broker: LocalBroker, scanner: VirtualSerialScanner, make_config: Callable[..., Path]
) -> None:
    blocked = trace_code("8123456", 88)
    unsigned = {"version": 2, "entries": [{"type": "code", "value": blocked, "reason": "lab"}]}
    for allow in (False, True):
        cfg = make_config(
            mqtt_port=broker.port,
            port=scanner.port,
            masterdata={"allow_unsigned": allow},
        )
        agent = AgentProcess(cfg).start()
        try:
            _ready(agent)
            _retain(broker, "blocklist", json.dumps(unsigned).encode())
            if allow:
                _logged(agent, "blocklist version 2 applied")
            else:
                _logged(agent, "refused", "no [central] public_key")
            assert agent.terminate() == 0
        finally:
            agent.stop()
