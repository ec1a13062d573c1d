"""Status figures against a scripted session, and the upload-deadline alarm with an injected clock."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from agent.config import StatusConfig
from agent.ops.localapi import ApiClient
from agent.ops.metrics import StatusCollector
from agent.ops.status import StatusSource, compute, gather, render, upload_deadline
from agent.service.requests import Quarantine, SetMode, Undo
from agent.service.writer import Acked
from agent.store import OutboxReader, Sealer, keys
from agent.store.facts import RecordFacts
from drivers import RawScan
from hardware_sim.broker import LocalBroker, free_port
from hardware_sim.serial_scanner import VirtualSerialScanner
from hardware_sim.workload import DEMO_CATALOG_CSV, unit_codes
from tests.harness import AgentProcess, InProcessAgent, agent_config, config_file, load_config

UTC = dt.UTC


def at(text: str) -> float:
    """An ISO date-time in UTC as epoch seconds."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_deadline_counts_working_days_only() -> None:
    friday = dt.date(2026, 11, 20)
    assert upload_deadline(friday, 7, frozenset()) == dt.date(2026, 12, 1)
    # A holiday on the Monday pushes the deadline by one working day.
    assert upload_deadline(friday, 7, frozenset({dt.date(2026, 11, 23)})) == dt.date(2026, 12, 2)
    assert upload_deadline(dt.date(2026, 11, 23), 1, frozenset()) == dt.date(2026, 11, 24)


def test_alarm_with_an_injected_clock() -> None:
    stored = at("2026-11-20T10:00:00")  # a Friday
    cfg = StatusConfig()
    on_time = compute([], [stored], now=at("2026-12-01T23:59:00"), cfg=cfg, tz=UTC)
    assert on_time.overdue == 0
    assert not on_time.alarm
    late = compute([], [stored], now=at("2026-12-02T00:01:00"), cfg=cfg, tz=UTC)
    assert late.overdue == 1
    assert late.alarm
    assert late.oldest_overdue == "2026-11-20"
    holiday = StatusConfig(holidays=("2026-11-23",))
    assert compute([], [stored], now=at("2026-12-02T12:00:00"), cfg=holiday, tz=UTC).overdue == 0
    three = StatusConfig(upload_deadline_days=3)
    assert compute([], [stored], now=at("2026-11-26T00:00:00"), cfg=three, tz=UTC).overdue == 1
    assert "ALARM" in render(late.as_dict(), "test")


def test_rates_from_record_facts() -> None:
    now = at("2026-11-20T12:00:00")
    records = [
        RecordFacts("event", now - 60, now - 30, "dispense"),
        RecordFacts("event", now - 50, None, "dispense"),
        RecordFacts("event", now - 40, None, "dispense"),
        RecordFacts("event", now - 30, None, "dispense", void=True),  # undoes one
        RecordFacts("reject", now - 20, None, "dispense", "commodity_barcode"),
        RecordFacts("event", now - 48 * 3600, now, "dispense"),  # outside the 24 h window
    ]
    st = compute(records, [], now=now, cfg=StatusConfig(), tz=UTC)
    figs = st.operations["dispense"]
    assert (figs.accepted, figs.refused, figs.uploaded, figs.undone) == (2, 1, 1, 1)
    assert figs.scan_rate == pytest.approx(2 / 3)
    assert figs.upload_rate == pytest.approx(1 / 2)


def test_status_of_a_scripted_session(tmp_path: Path) -> None:
    (tmp_path / "catalog.csv").write_text(DEMO_CATALOG_CSV, encoding="utf-8")
    doc = agent_config(
        tmp_path,
        device_id="d1",
        site="s1",
        catalog=tmp_path / "catalog.csv",
        api={"enabled": False},
    )
    config = load_config(tmp_path, doc)
    agent = InProcessAgent(config)
    try:
        units = unit_codes(6)
        clock = time.time()
        for i, code in enumerate(units[:4]):
            agent.process([RawScan(code, "counter", clock + i)])
        agent.process([RawScan("6901234567892", "counter", clock + 5)])
        agent.process([RawScan("812345600000", "counter", clock + 6)])
        agent.process([Undo(source="counter")])  # withdraws units[3]
        agent.process([SetMode(source="dock", op="receive")])
        agent.process([RawScan(units[5], "dock", clock + 7)])
        reader = OutboxReader(config.device.data_dir, agent.agent.sealer)
        try:
            events = [r.rid for r in reader.unsent(0, 100) if r.topic == "event"]
        finally:
            reader.close()
        agent.process([Acked(events[:2])])  # the broker acknowledged the first two
    finally:
        agent.close()

    ring = keys.load(tmp_path / "keys", create=False)
    now = time.time() + 1
    st = gather(config.device.data_dir, Sealer(ring.data), config.status, now)
    dispense = st.operations["dispense"]
    assert (dispense.accepted, dispense.refused, dispense.uploaded) == (3, 2, 2)
    assert dispense.undone == 1
    assert dispense.scan_rate == pytest.approx(3 / 5)
    assert dispense.upload_rate == pytest.approx(2 / 3)
    assert st.operations["receive"].accepted == 1
    assert st.refused_by_reason == {"commodity_barcode": 1, "unknown_format": 1}
    # Unsent: 2 dispense events + the void + the receive event + 2 rejects.
    assert st.unsent == 6
    assert st.oldest_unsent_age is not None
    assert st.overdue == 0
    # Ten working days later nothing was uploaded: the four unsent events are overdue.
    later = gather(config.device.data_dir, Sealer(ring.data), config.status, now + 14 * 86400)
    assert later.overdue == 4
    assert later.alarm


def plain_agent(root: Path) -> InProcessAgent:
    """An agent on a new store under `root`: no catalog, no broker, no local API."""
    doc = agent_config(root, device_id="d1", site="s1", api={"enabled": False})
    return InProcessAgent(load_config(root, doc))


def test_a_kept_source_agrees_with_a_fresh_reading_as_the_store_changes(tmp_path: Path) -> None:
    agent = plain_agent(tmp_path)
    config = agent.config
    source = StatusSource(config.device.data_dir, agent.agent.sealer)

    def reading(now: float) -> dict[str, object]:
        kept = source.gather(config.status, now).as_dict()
        assert (
            kept == gather(config.device.data_dir, agent.agent.sealer, config.status, now).as_dict()
        )
        return kept

    def dispense(figures: dict[str, object]) -> dict[str, Any]:
        ops = figures["operations"]
        assert isinstance(ops, dict)
        return dict(ops.get("dispense", {}))

    units = unit_codes(8)
    clock = time.time()
    try:
        for i, code in enumerate(units[:4]):
            agent.process([RawScan(code, "counter", clock + i)])
        assert dispense(reading(clock + 10))["accepted"] == 4
        for i, code in enumerate(units[4:]):
            agent.process([RawScan(code, "counter", clock + 20 + i)])
        agent.process([RawScan("6901234567892", "counter", clock + 30)])  # refused
        reader = OutboxReader(config.device.data_dir, agent.agent.sealer)
        try:
            events = [r.rid for r in reader.unsent(0, 100) if r.topic == "event"]
        finally:
            reader.close()
        agent.process([Acked(events[:3])])
        agent.process([Quarantine(rid=events[5])])  # leaves the figures
        figures = dispense(reading(clock + 40))
        assert (figures["accepted"], figures["refused"], figures["uploaded"]) == (7, 1, 3)
        assert agent.agent.store.prune(now=time.time() + 40 * 86400) > 0  # sent rows are pruned
        assert dispense(reading(clock + 50))["uploaded"] == 0
        assert dispense(reading(clock + 2 * 86400)) == {}  # the window moved past them all
        assert dispense(reading(clock + 60))["accepted"] > 0  # a clock set back: read again
    finally:
        agent.close()


# --- scanner state (issue 16): status, --json, the local API and the metrics ----------------


def test_scanner_state_in_status_the_api_and_the_metrics(
    broker: LocalBroker, scanner: VirtualSerialScanner, tmp_path: Path
) -> None:
    """A pty scanner that reads and one configured on a port that does not exist."""
    port = free_port()
    cfg = config_file(
        tmp_path,
        mqtt_port=broker.port,
        scanner=[
            {"type": "serial", "name": "counter", "port": scanner.port},
            {"type": "serial", "name": "dock", "port": str(tmp_path / "ttyNoSuch")},
        ],
        api={"prometheus_port": port},
    )
    agent = AgentProcess(cfg).start()
    try:
        assert agent.api_ready(), agent.stderr
        scanner.scan(unit_codes(1)[0])
        assert agent.wait_for(lambda a: bool(a.confirmed())), agent.lines

        done = subprocess.run(
            [sys.executable, "-m", "agent", "status", "--json", "--config", str(cfg)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 0, done.stderr
        by_source = {s["source"]: s for s in json.loads(done.stdout)["scanners"]}
        counter, dock = by_source["counter"], by_source["dock"]
        assert (counter["present"], counter["open"], counter["opens"]) == (True, True, 1)
        assert counter["last_scan"] is not None
        assert counter["last_error"] is None
        assert counter["device"] == scanner.port
        assert (dock["present"], dock["open"], dock["opens"]) == (False, False, 0)
        assert dock["failures"] >= 1
        assert "ttyNoSuch" in dock["last_error"]
        assert dock["absent_since"] is not None

        # The local API's `status` is the same composition.
        with ApiClient(tmp_path / "data" / "api.sock") as client:
            reply = client.call("status")
        assert [s["source"] for s in reply["scanners"]] == ["counter", "dock"]

        human = subprocess.run(
            [sys.executable, "-m", "agent", "status", "--config", str(cfg)],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout
        lines = human.splitlines()
        assert "  scanners:" in lines
        assert any(
            line.split()[:2] == ["counter", "reading"] and "s ago" in line for line in lines
        ), human
        assert any(
            line.split()[:3] == ["dock", "NOT", "THERE"] and "ttyNoSuch" in line for line in lines
        ), human

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
            text = resp.read().decode()
        assert 'tracescan_scanner_open{source="counter"} 1.0' in text
        assert 'tracescan_scanner_open{source="dock"} 0.0' in text
        assert 'tracescan_scanner_present{source="dock"} 0.0' in text
        assert 'tracescan_scanner_last_scan_timestamp_seconds{source="counter"} 1.' in text
        assert 'tracescan_scanner_last_scan_timestamp_seconds{source="dock"}' not in text
        assert 'tracescan_scanner_failures_total{source="dock"}' in text
        assert 'tracescan_scanner_absent_seconds{source="counter"} 0.0' in text
        assert agent.terminate() == 0
    finally:
        agent.stop()
    # With the agent stopped, nobody knows the scanners.
    stored = subprocess.run(
        [sys.executable, "-m", "agent", "status", "--json", "--config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert json.loads(stored.stdout)["scanners"] is None


def test_with_a_central_ledger_confirmed_stands_beside_uploaded() -> None:
    """`sent` is central's ack there; `published` the broker's PUBACK without it yet."""
    now = at("2026-11-20T12:00:00")
    records = [
        RecordFacts("event", now - 60, now - 10, "dispense"),  # confirmed by central
        RecordFacts("event", now - 50, None, "dispense", published=now - 40),  # broker only
        RecordFacts("event", now - 40, None, "dispense"),  # not sent at all
    ]
    st = compute(records, [], now=now, cfg=StatusConfig(), tz=UTC, unsent=2, central=True)
    st.awaiting_confirmation, st.confirmed_through = 1, 1
    figs = st.operations["dispense"]
    assert (figs.accepted, figs.uploaded, figs.confirmed) == (3, 2, 1)
    assert figs.confirm_rate == pytest.approx(1 / 3)
    text = render(st.as_dict(), "test")
    assert "confirmed through seq 1; 1 uploaded, awaiting its acknowledgement" in text
    assert "confirm rate" in text
    metrics = {
        (m.name, tuple(s.labels.values())): s.value
        for m in StatusCollector(st.as_dict).collect()
        for s in m.samples
    }
    assert metrics[("tracescan_confirmed", ("dispense",))] == 1.0
    assert metrics[("tracescan_confirm_rate", ("dispense",))] == pytest.approx(1 / 3)
    assert metrics[("tracescan_confirmed_through", ())] == 1.0
    assert metrics[("tracescan_awaiting_confirmation", ())] == 1.0
    # without a ledger none of it is shown
    plain = compute(records, [], now=now, cfg=StatusConfig(), tz=UTC)
    assert plain.operations["dispense"].confirmed is None
    assert "central ledger" not in render(plain.as_dict(), "test")
    names = {m.name for m in StatusCollector(plain.as_dict).collect()}
    assert "tracescan_confirmed_through" not in names
