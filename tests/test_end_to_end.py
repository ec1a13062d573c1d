"""Scanner → agent → broker with real parts: pty scanner, SQLite files, mosquitto."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from agent.ops.feedback import mask
from agent.records.verify import public_key_from_b64, verify_chain
from hardware_sim.broker import LocalBroker
from hardware_sim.serial_scanner import VirtualSerialScanner
from hardware_sim.subscriber import Recorder
from hardware_sim.workload import DEMO_CASE_PREFIX, trace_code, unit_codes
from tests.harness import AgentProcess


def _pubkey(config: Path) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "agent", "pubkey", "--config", str(config)],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


def _events_by_seq(recorder: Recorder) -> dict[int, bytes]:
    """Events keyed by seq; asserts every duplicate is byte-identical (at-least-once)."""
    seen: dict[int, bytes] = {}
    for m in recorder.on("event"):
        seq = json.loads(m.payload)["seq"]
        if seq in seen:
            assert seen[seq] == m.payload, f"seq {seq} re-sent with different bytes"
        seen[seq] = m.payload
    return seen


def _told(line: str) -> tuple[int, str]:
    """(seq, masked code) of a console confirmation `✔ [source] seq=N kind/level CODE`."""
    _, _, seq, _, masked = line.split(" ", 4)
    assert seq.startswith("seq=")
    return int(seq.removeprefix("seq=")), masked


def _ready(agent: AgentProcess, scanner_connected_timeout: float = 10.0) -> None:
    assert agent.wait_for(
        lambda a: any("reading" in ln for ln in a.stderr), timeout=scanner_connected_timeout
    ), agent.stderr


def test_scans_become_signed_chained_events_and_refusals_go_to_reject(
    agent: AgentProcess, scanner: VirtualSerialScanner, recorder: Recorder
) -> None:
    pubkey = _pubkey(agent.config)
    agent.start()
    _ready(agent)
    codes = unit_codes(20)
    scanner.scan_many(codes[:10])
    scanner.scan("6901234567892")  # commodity barcode
    scanner.scan(trace_code(DEMO_CASE_PREFIX, 5))  # case code at dispensing: stops the line
    scanner.scan("TSC:ACK")  # the worker acknowledges with the command barcode
    scanner.write(b"\x00\x01garbage\r")
    scanner.scan_many(codes[10:])
    assert recorder.wait_for(lambda r: len(r.on("event")) >= 20 and len(r.on("reject")) >= 3)
    assert agent.terminate() == 0

    events = _events_by_seq(recorder)
    assert sorted(events) == list(range(1, 21))
    report = verify_chain([events[s] for s in sorted(events)], public_key_from_b64(pubkey))
    assert report.ok, report.problems
    payloads = [json.loads(events[s]) for s in sorted(events)]
    assert [p["code"] for p in payloads] == codes
    first = payloads[0]
    assert first["v"] == 1
    assert first["device"] == "station-01"
    assert first["site"] == "site-01"
    assert first["op"] == "dispense"
    assert first["kind"] == "cn20"
    assert first["level"] == "unit"
    assert first["fields"] == {
        "product_code": codes[0][:7],
        "serial": codes[0][7:16],
        "bill_type": "323",
    }
    assert first["prev"] == "0" * 64
    assert first["ts"].endswith("+00:00")
    assert first["doc"] is None
    assert len({p["id"] for p in payloads}) == 20

    reasons = [json.loads(m.payload)["reason"] for m in recorder.on("reject")]
    assert "level_not_allowed" in reasons
    assert "bad_charset" in reasons
    for m in recorder.on("reject"):
        obj = json.loads(m.payload)
        assert "seq" not in obj
        assert "prev" not in obj
        assert obj["message"]
    # status: retained online on connect, offline after a clean stop
    statuses = [json.loads(m.payload) for m in recorder.on("status")]
    assert statuses[0]["online"] is True
    assert statuses[-1] == {"online": False}


def test_sigterm_exits_zero_within_five_seconds(
    agent: AgentProcess, scanner: VirtualSerialScanner
) -> None:
    agent.start()
    _ready(agent)
    scanner.scan_many(unit_codes(3))
    assert agent.wait_for(lambda a: len(a.confirmed()) == 3)
    t0 = time.monotonic()
    assert agent.terminate(timeout=5.0) == 0
    assert time.monotonic() - t0 < 5.0


def test_kill9_and_restart_loses_no_confirmed_event_and_reuses_no_seq(
    agent: AgentProcess, scanner: VirtualSerialScanner, recorder: Recorder, broker: LocalBroker
) -> None:
    pubkey = _pubkey(agent.config)
    codes = unit_codes(60)
    confirmed_total = 0
    confirmed: list[tuple[int, str]] = []  # (seq, masked code) as the worker was told
    for rnd in range(3):
        agent.start()
        _ready(agent)
        batch = codes[rnd * 20 : (rnd + 1) * 20]
        scanner.scan_many(batch[:10])
        assert agent.wait_for(lambda a: len(a.confirmed()) >= 10)
        scanner.scan_many(batch[10:])  # some of these may be lost in the pipe: never confirmed
        time.sleep(0.01 * rnd)
        agent.kill9()
        confirmed_total += len(agent.confirmed())
        confirmed += [_told(line) for line in agent.confirmed()]
    agent.start()
    _ready(agent)
    assert recorder.wait_for(lambda r: len(_events_by_seq(r)) >= confirmed_total, timeout=30)
    assert agent.terminate() == 0
    events = _events_by_seq(recorder)
    assert sorted(events) == list(range(1, len(events) + 1))
    assert len(events) >= confirmed_total
    report = verify_chain([events[s] for s in sorted(events)], public_key_from_b64(pubkey))
    assert report.ok, report.problems
    # every confirmed scan is among the events, under the number and code it was confirmed
    # with, and no code was recorded twice
    codes_sent = [json.loads(events[s])["code"] for s in sorted(events)]
    assert len(codes_sent) == len(set(codes_sent))
    assert len(confirmed) == confirmed_total
    for seq, masked in confirmed:
        code = json.loads(events[seq])["code"]
        assert code in codes
        assert mask(code) == masked, (seq, code, masked)


def test_broker_outage_buffers_then_delivers_everything(
    agent: AgentProcess, scanner: VirtualSerialScanner, broker: LocalBroker, recorder: Recorder
) -> None:
    pubkey = _pubkey(agent.config)
    agent.start()
    _ready(agent)
    codes = unit_codes(30)
    scanner.scan_many(codes[:5])
    assert recorder.wait_for(lambda r: len(_events_by_seq(r)) == 5)
    broker.stop()
    scanner.scan_many(codes[5:25])  # confirmed to the worker while the broker is down
    assert agent.wait_for(lambda a: len(a.confirmed()) == 25)
    time.sleep(1.0)  # the agent retries against a dead broker meanwhile
    broker.start()
    scanner.scan_many(codes[25:])
    assert recorder.wait_for(lambda r: len(_events_by_seq(r)) == 30, timeout=30), (
        sorted(_events_by_seq(recorder)),
        "\n".join(agent.stderr),
    )
    assert agent.terminate() == 0
    events = _events_by_seq(recorder)
    assert sorted(events) == list(range(1, 31))
    report = verify_chain([events[s] for s in sorted(events)], public_key_from_b64(pubkey))
    assert report.ok, report.problems
    assert [json.loads(events[s])["code"] for s in sorted(events)] == codes


def test_scanner_unplug_and_replug_keeps_the_daemon_running(
    agent: AgentProcess, scanner: VirtualSerialScanner, recorder: Recorder
) -> None:
    agent.start()
    _ready(agent)
    codes = unit_codes(6)
    scanner.scan_many(codes[:3])
    assert agent.wait_for(lambda a: len(a.confirmed()) == 3)
    scanner.unplug()
    time.sleep(0.3)
    scanner.plug()
    assert agent.wait_for(lambda a: sum("reading" in ln for ln in a.stderr) >= 2, timeout=10), (
        agent.stderr
    )
    scanner.scan_many(codes[3:])
    assert recorder.wait_for(lambda r: len(r.on("event")) >= 6)
    assert agent.proc is not None
    assert agent.proc.poll() is None
    assert agent.terminate() == 0


def test_a_tampered_row_is_quarantined_with_an_alert_and_does_not_block_the_rest(
    agent: AgentProcess, scanner: VirtualSerialScanner, recorder: Recorder, broker: LocalBroker
) -> None:
    import sqlite3  # noqa: PLC0415

    from agent.config import load  # noqa: PLC0415
    from agent.store import DB_FILE  # noqa: PLC0415

    codes = unit_codes(6, start=7000)
    broker.stop()  # keep everything in the outbox while one row is altered
    agent.start()
    _ready(agent)
    scanner.scan_many(codes)
    assert agent.wait_for(lambda a: len(a.confirmed()) == 6)
    assert agent.terminate() == 0
    db = load(agent.config).device.data_dir / DB_FILE
    conn = sqlite3.connect(db)
    (body,) = conn.execute("SELECT body FROM outbox WHERE seq = 3").fetchone()
    conn.execute("UPDATE outbox SET body = ? WHERE seq = 3", (body[:-1] + bytes([body[-1] ^ 1]),))
    conn.commit()
    conn.close()
    broker.start()
    agent.start()
    _ready(agent)
    assert recorder.wait_for(lambda r: len(_events_by_seq(r)) == 5 and bool(r.on("alert")))
    assert sorted(_events_by_seq(recorder)) == [1, 2, 4, 5, 6]
    alert = json.loads(recorder.on("alert")[0].payload)
    assert "failed authentication" in alert["alert"]
    assert agent.terminate() == 0
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT topic FROM outbox WHERE seq = 3").fetchone() == ("quarantined",)
    conn.close()
