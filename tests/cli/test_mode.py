"""`tracescan mode` with no agent to ask (a running agent: tests/ops/test_localapi.py)."""

from __future__ import annotations

from pathlib import Path

from tests.cli.conftest import one_line_message, restation, tracescan


def test_an_agent_that_is_not_running(station: Path) -> None:
    r = tracescan("mode", "receive", "--doc", "PO-1", "--config", str(station))
    assert r.returncode == 3
    one_line_message(r, "tracescan mode: no agent listening on", "is the agent running?")


def test_an_agent_whose_api_is_off(station: Path) -> None:
    restation(station, api={"enabled": False})
    r = tracescan("mode", "receive", "--config", str(station))
    assert r.returncode == 3
    one_line_message(r, "the local API is off", "[api] enabled = false")


def test_an_unknown_operation_is_a_usage_error(station: Path) -> None:
    r = tracescan("mode", "sell", "--config", str(station))
    assert r.returncode == 2
    assert "invalid choice: 'sell'" in r.stderr
