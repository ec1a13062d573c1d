"""The local API over a real Unix socket, with the agent running as a subprocess."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent.ops.localapi import ApiClient, ApiError, BadRequest, parse_control
from agent.service.requests import SetMode
from hardware_sim.broker import LocalBroker, free_port
from hardware_sim.workload import DEMO_CASE_PREFIX, trace_code, unit_codes
from tests.harness import AgentProcess


@pytest.fixture
def running(
    broker: LocalBroker, make_config: Callable[..., Path], tmp_path: Path
) -> Iterator[tuple[AgentProcess, Path]]:
    """An agent with its API socket up (no scanner: everything arrives over the API)."""
    cfg = make_config(mqtt_port=broker.port)
    agent = AgentProcess(cfg).start()
    assert agent.api_ready(), agent.stderr
    yield agent, cfg
    agent.stop()


def cli(*args: str) -> tuple[int, str]:
    """Run `tracescan ...`; exit status and stdout."""
    done = subprocess.run(
        [sys.executable, "-m", "agent", *args], capture_output=True, text=True, timeout=30
    )
    return done.returncode, done.stdout


def test_subscribe_submit_mode_receipt_status(
    running: tuple[AgentProcess, Path], tmp_path: Path
) -> None:
    agent, cfg = running
    sock = tmp_path / "data" / "api.sock"
    assert stat.S_IMODE(sock.stat().st_mode) == 0o660
    code = unit_codes(1)[0]
    with ApiClient(sock) as sub, ApiClient(sock) as pos:
        assert sub.call("subscribe", id=7) == {"id": 7, "ok": True, "subscribed": True}
        rc, out = cli("mode", "sale", "--doc", "RX-1", "--source", "api", "--config", str(cfg))
        assert rc == 0
        assert json.loads(out)["op"] == "sale"
        assert json.loads(out)["doc"] == "RX-1"

        reply = pos.call("submit", text=code, id="a")
        assert reply["id"] == "a"
        assert reply["accepted"] is True
        assert reply["signal"] == "accepted"
        assert reply["seq"] == 1
        assert reply["code"] == code
        pushed = sub.receive()
        assert pushed["event"] == "decision"
        assert (pushed["code"], pushed["seq"], pushed["source"]) == (code, 1, "api")

        refused = pos.call("submit", text="6901234567892")
        assert refused["accepted"] is False
        assert refused["reason"] == "commodity_barcode"
        assert refused["signal"] == "refused"
        assert sub.receive()["reason"] == "commodity_barcode"

        receipt = pos.call("receipt", doc="RX-1")
        assert receipt["codes"] == [code]
        assert code in receipt["text"]
        assert "RX-1" in receipt["text"]

        assert pos.call("nonsense")["ok"] is False
        status = pos.call("status")
        assert status["ok"] is True
        assert status["operations"]["sale"]["accepted"] == 1
        assert status["operations"]["sale"]["refused"] == 1
        assert status["refused_by_reason"] == {"commodity_barcode": 1}
        assert status["counters"]["accepted.sale"] == 1
        assert status["contexts"]["api"]["doc"] == "RX-1"
        assert status["online"] is True

    rc, out = cli("status", "--json", "--config", str(cfg))
    assert rc == 0
    assert json.loads(out)["operations"]["sale"]["scan_rate"] == 0.5
    assert agent.terminate() == 0
    # With the agent stopped, status reads the store itself and cannot know the link.
    rc, out = cli("status", "--config", str(cfg))
    assert rc == 3  # the agent is not running: a monitoring check must notice (issue 16)
    assert "agent not reachable" in out
    assert "uplink          : unknown" in out
    assert "commodity_barcode 1" in out


def test_stop_the_line_and_acknowledge(running: tuple[AgentProcess, Path], tmp_path: Path) -> None:
    _, cfg = running
    units = unit_codes(3, start=50)
    with ApiClient(tmp_path / "data" / "api.sock") as pos:
        case = pos.call("submit", text=trace_code(DEMO_CASE_PREFIX, 3))
        assert case["reason"] == "level_not_allowed"
        assert case["signal"] == "held"
        blocked = pos.call("submit", text=units[0])
        assert blocked["reason"] == "awaiting_ack"
        assert blocked["signal"] == "held"
        assert pos.call("contexts")["contexts"]["api"]["held"] == "level_not_allowed"

        rc, out = cli("ack", "--config", str(cfg))
        assert rc == 0
        assert json.loads(out)["released"] == "level_not_allowed"
        assert pos.call("contexts")["contexts"]["api"]["held"] is None
        # (units[0] again would be absorbed as a double read within the window.)
        assert pos.call("submit", text=units[1])["accepted"] is True

        # The acknowledgement also works as a request of its own, for one scanner.
        assert pos.call("submit", text=trace_code(DEMO_CASE_PREFIX, 4))["signal"] == "held"
        assert pos.call("ack", source="api")["released"] == "level_not_allowed"
        assert pos.call("submit", text=units[2])["accepted"] is True


def test_prometheus_endpoint_on_localhost(
    broker: LocalBroker, make_config: Callable[..., Path], tmp_path: Path
) -> None:
    port = free_port()
    cfg = make_config(mqtt_port=broker.port)
    cfg.write_text(cfg.read_text() + f"\n[api]\nprometheus_port = {port}\n")
    agent = AgentProcess(cfg).start()
    try:
        sock = tmp_path / "data" / "api.sock"
        assert agent.api_ready(), agent.stderr
        with ApiClient(sock) as pos:
            assert pos.call("submit", text=unit_codes(1, start=80)[0])["accepted"] is True
            assert pos.call("submit", text="6901234567892")["accepted"] is False
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
            text = resp.read().decode()
        assert 'tracescan_accepted{op="dispense"} 1.0' in text
        assert 'tracescan_refused_by_reason{reason="commodity_barcode"} 1.0' in text
        assert 'tracescan_scan_rate{op="dispense"} 0.5' in text
        assert "tracescan_overdue_events 0.0" in text
        assert agent.terminate() == 0
    finally:
        agent.stop()


@pytest.mark.parametrize(
    ("cmd", "fields", "field"),
    [
        ("mode", {"op": "sell"}, "operation"),
        ("mode", {"op": ["sale"]}, "operation"),
        ("mode", {"doc": {"a": 1}}, "'doc'"),
        ("mode", {"doc": "x" * 65}, "'doc'"),
        ("mode", {"doc": "RX\n2026-11-26 ERROR forged"}, "'doc'"),
        ("mode", {"source": "till\n\x1b[2J"}, "'source'"),
        ("ack", {"source": 7}, "'source'"),
        ("undo", {"source": "s" * 65}, "'source'"),
    ],
)
def test_a_bad_field_is_refused_before_it_reaches_the_writer(
    cmd: str, fields: dict[str, object], field: str
) -> None:
    with pytest.raises(BadRequest, match=field):
        parse_control(cmd, fields)


def test_control_requests_are_typed_and_address_only_known_sources() -> None:
    known = frozenset({"dock", "api", "*"})
    mode = parse_control("mode", {"op": "receive", "doc": "", "source": "dock"}, known)
    assert mode == SetMode(source="dock", op="receive", doc="")
    with pytest.raises(BadRequest, match="no scanner of this station"):
        parse_control("ack", {"source": "nosuch"}, known)
    assert parse_control("mode", {}) == SetMode()  # keeps op and document, every scanner
    assert parse_control("submit", {"text": "x"}) is None  # not a control request
    assert parse_control("status", {}) is None


def test_hostile_requests_get_error_replies_and_the_agent_keeps_confirming(
    running: tuple[AgentProcess, Path], tmp_path: Path
) -> None:
    agent, _ = running
    with ApiClient(tmp_path / "data" / "api.sock") as pos:
        pos.sock.sendall(b"{not json\n[1, 2]\n")
        assert pos.receive()["ok"] is False
        assert pos.receive()["error"] == "bad request: not a JSON object"
        assert "'doc'" in pos.call("mode", op="sale", doc={"nested": ["object"]})["error"]
        assert "'source'" in pos.call("ack", source="x\n\x1b[31mERROR")["error"]
        assert pos.call("submit", text=["not", "text"])["ok"] is False
        assert "'doc'" in pos.call("receipt")["error"]
        assert "'doc'" in pos.call("receipt", doc="x\n2026 forged")["error"]
        assert "no scanner" in pos.call("mode", op="sale", source="nosuch")["error"]
        assert "no scanner" in pos.call("submit", text="x", source="nosuch")["error"]
        assert pos.call("contexts")["contexts"].keys() <= {"*", "api"}  # no phantom context
        assert pos.call("submit", text=unit_codes(1, start=90)[0])["accepted"] is True
    assert agent.proc is not None
    assert agent.proc.poll() is None


def test_a_flood_of_connections_is_capped_and_idle_ones_are_closed(
    broker: LocalBroker, make_config: Callable[..., Path], tmp_path: Path
) -> None:
    cfg = make_config(mqtt_port=broker.port, api={"max_clients": 4, "idle_timeout": 1.0})
    agent = AgentProcess(cfg).start()
    sock = tmp_path / "data" / "api.sock"
    try:
        assert agent.api_ready(), agent.stderr
        idle = [ApiClient(sock) for _ in range(4)]
        with ApiClient(sock) as extra:
            assert extra.receive() == {"ok": False, "error": "too many API clients connected"}
        # The idle connections are closed by the agent, and their places become free.
        for client in idle:
            with pytest.raises(ApiError):
                client.receive()
            client.close()
        with ApiClient(sock) as pos:
            assert pos.call("submit", text=unit_codes(1, start=95)[0])["accepted"] is True
        assert agent.terminate() == 0
    finally:
        agent.stop()


def test_one_connection_cannot_flood_the_writer(
    running: tuple[AgentProcess, Path], tmp_path: Path
) -> None:
    with ApiClient(tmp_path / "data" / "api.sock") as pos:
        pos.sock.sendall(b'{"cmd": "counters"}\n' * 400)
        replies = [pos.receive() for _ in range(400)]
    refused = [r for r in replies if r.get("error") == "too many requests: slow down"]
    assert refused
    assert len(refused) < 400
    assert all(r["ok"] for r in replies if r not in refused)
