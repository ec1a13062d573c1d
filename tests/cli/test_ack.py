"""`tracescan ack` against a real agent: releases, "nothing to acknowledge", agent down."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent.ops.localapi import ApiClient
from hardware_sim.broker import LocalBroker
from hardware_sim.workload import DEMO_CASE_PREFIX, trace_code
from tests.cli.conftest import one_line_message, tracescan
from tests.harness import AgentProcess


@pytest.fixture
def running(
    broker: LocalBroker, make_config: Callable[..., Path], tmp_path: Path
) -> Iterator[Path]:
    """A running agent with its API socket up; its config file."""
    cfg = make_config(mqtt_port=broker.port)
    agent = AgentProcess(cfg).start()
    sock = tmp_path / "data" / "api.sock"
    assert agent.wait_for(lambda a: sock.exists() and bool(a.stderr)), agent.stderr
    yield cfg
    agent.stop()


def test_nothing_held_says_so(running: Path) -> None:
    r = tracescan("ack", "--config", str(running))
    assert r.returncode == 0, r.stderr
    assert r.stdout == "nothing to acknowledge\n"
    r = tracescan("ack", "--source", "api", "--config", str(running))
    assert r.returncode == 0, r.stderr
    assert r.stdout == "nothing to acknowledge: scanner api is not stopped\n"


def test_a_stopped_scanner_is_released_once(running: Path, tmp_path: Path) -> None:
    with ApiClient(tmp_path / "data" / "api.sock") as pos:
        assert pos.call("submit", text=trace_code(DEMO_CASE_PREFIX, 9))["signal"] == "held"
    r = tracescan("ack", "--config", str(running))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["released"] == "level_not_allowed"
    r = tracescan("ack", "--config", str(running))
    assert r.stdout == "nothing to acknowledge\n"


def test_an_agent_that_is_not_running(station: Path) -> None:
    r = tracescan("ack", "--config", str(station))
    assert r.returncode == 3
    one_line_message(r, "tracescan ack: no agent listening on", "is the agent running?")


def test_a_release_from_the_shell_or_the_pos_is_shown_on_the_workers_console(
    broker: LocalBroker, make_config: Callable[..., Path], tmp_path: Path
) -> None:
    # Two POS terminals, named as API sources: only configured names may be scanned as.
    cfg = make_config(mqtt_port=broker.port, api={"sources": ["counter", "dock"]})
    agent = AgentProcess(cfg).start()
    try:
        assert agent.api_ready(), agent.stderr
        with ApiClient(tmp_path / "data" / "api.sock") as pos:
            case = pos.call("submit", text=trace_code(DEMO_CASE_PREFIX, 9), source="counter")
            assert case["signal"] == "held"
            r = tracescan("ack", "--config", str(cfg))
            assert r.returncode == 0, r.stderr
            assert agent.wait_for(
                lambda a: "ℹ [counter] released by ack (level_not_allowed)" in a.lines
            ), agent.lines

            # From the POS over the API: the console line, and a note to subscribers.
            with ApiClient(tmp_path / "data" / "api.sock") as feed:
                assert feed.call("subscribe")["subscribed"]
                case = pos.call("submit", text=trace_code(DEMO_CASE_PREFIX, 10), source="dock")
                assert case["signal"] == "held"
                assert pos.call("ack", source="dock")["released"] == "level_not_allowed"
                assert feed.receive()["event"] == "decision"
                note = feed.receive()
            assert note["event"] == "note"
            assert note["source"] == "dock"
            assert note["text"] == "released by ack (level_not_allowed)"
            assert agent.wait_for(
                lambda a: "ℹ [dock] released by ack (level_not_allowed)" in a.lines
            ), agent.lines
            # Nothing held: nothing to tell the worker.
            assert pos.call("ack", source="dock")["released"] is None
    finally:
        assert agent.terminate() == 0
    assert sum("released by ack" in line for line in agent.lines) == 2
