"""agent/service/clock.py and its use: wall-clock steps are noticed, alerted, and decisions
(expiry, double reads, retention) stay sane across them."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import pytest

from agent.service.clock import MAX_START_OFFSET, STEP_TOLERANCE, TrustedTime
from agent.store import OutboxReader
from drivers import RawScan
from tests.harness import InProcessAgent, agent_config, load_config

DAY = 86400.0


def test_steps_either_way_are_noticed_and_drift_is_not() -> None:
    clock = TrustedTime(wall=1000.0, mono=50.0, newest_stored=None)
    assert clock.observe(1010.5, 60.0) is None  # half a second of drift
    back = clock.observe(1020.0 - 3600, 70.0)
    assert back is not None
    assert back.seconds == pytest.approx(-3600, abs=1)
    assert clock.trusted(1020.0 - 3600) == pytest.approx(1020.0, abs=1)  # kept running
    assert clock.observe(1030.0 - 3600, 80.0) is None  # still behind by the same: no new step
    forward = clock.observe(1040.0 + 3600, 90.0)
    assert forward is not None
    assert forward.seconds == pytest.approx(7200, abs=1)
    assert clock.offset == 0.0  # a step forward is trusted at once (NTP after a stale boot)
    assert "stepped forward by 72" in forward.describe()


def test_at_start_the_clock_is_not_behind_the_newest_record_by_more_than_a_bound() -> None:
    assert TrustedTime(wall=5000.0, mono=0.0, newest_stored=5000.0 + STEP_TOLERANCE / 2).offset == 0
    behind = TrustedTime(wall=5000.0, mono=0.0, newest_stored=5000.0 + DAY)
    assert behind.offset == DAY
    assert behind.at_start is not None
    far = TrustedTime(wall=5000.0, mono=0.0, newest_stored=5000.0 + 400 * DAY)
    assert far.offset == MAX_START_OFFSET  # a record from a clock wrongly far ahead


def _gs1_expiring(day: dt.date) -> str:
    return f"0106901234567892{day:17%y%m%d}10LOT\x1d21SN{day:%j}"


def test_a_clock_stepped_back_does_not_make_an_expired_pack_valid(tmp_path: Path) -> None:
    agent = InProcessAgent(load_config(tmp_path, agent_config(tmp_path, api={"enabled": False})))
    try:
        yesterday = dt.date.fromtimestamp(time.time()) - dt.timedelta(days=1)
        assert agent.scan(_gs1_expiring(yesterday)).reason == "expired"
        back = time.time() - 30 * DAY  # someone sets the date back a month
        step = agent.agent.pipeline.clock.observe(back, time.monotonic())
        assert step is not None
        agent.process([RawScan(_gs1_expiring(yesterday).replace("SN", "SX"), "s1", back)])
        assert agent.collect.last().reason == "expired"
    finally:
        agent.close()


def test_a_clock_stepped_back_does_not_turn_a_double_read_into_a_resale(tmp_path: Path) -> None:
    agent = InProcessAgent(load_config(tmp_path, agent_config(tmp_path, api={"enabled": False})))
    code = "81234560000000011234"
    try:
        now, mono = time.time(), time.monotonic()
        agent.process([RawScan(code, "s1", now, mono=mono)])
        assert agent.collect.last().accepted
        agent.process([RawScan(code, "s1", now - 3600, mono=mono + 0.2)])  # the same read
        assert agent.collect.last().reason == "duplicate_scan"
        assert agent.agent.pipeline.contexts.get("s1").held is None  # no 回流 stop
    finally:
        agent.close()


def test_a_step_is_alerted_and_pauses_retention(tmp_path: Path) -> None:
    agent = InProcessAgent(load_config(tmp_path, agent_config(tmp_path, api={"enabled": False})))
    try:
        agent.scan("81234560000000011234")
        writer = agent.agent.writer
        writer.readings = lambda: (time.time() + 365 * DAY, time.monotonic())
        writer.pump(block=False)  # the first pump observes the step
        alerts = [a["alert"] for a in agent.records("alert")]
        assert any("stepped forward" in a for a in alerts)
        store = agent.agent.store
        store.write([], None, [r.rid for r in agent_rows(agent)])  # everything is sent
        sent_rows = len(agent_rows(agent, sent=True))
        writer.pump(block=False)  # a sweep would prune the "year-old" sent rows now
        assert len(agent_rows(agent, sent=True)) == sent_rows  # no sweep: the clock just stepped
        writer._next_prune = 0.0  # a day later, with the clock steady: the sweep runs
        writer.pump(block=False)
        assert len(agent_rows(agent, sent=True)) < sent_rows
    finally:
        agent.close()


def agent_rows(agent: InProcessAgent, *, sent: bool = False) -> list[Any]:
    """The agent's stored rows: unsent ones, or (`sent`) every row in the outbox."""
    store = agent.agent.store
    if sent:
        return list(store.conn.execute("SELECT rid FROM outbox").fetchall())
    reader = OutboxReader(agent.config.device.data_dir, agent.agent.sealer)
    try:
        return reader.unsent(0, 1000)
    finally:
        reader.close()
