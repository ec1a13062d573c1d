"""The real `tracescan` in a child process, and a station configuration to point it at."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agent.config import load
from drivers import RawScan
from tests.harness import InProcessAgent, agent_config, write_config


def tracescan(
    *args: str, stdin: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """`python -m agent ARGS...`: exit status, stdout and stderr."""
    return subprocess.run(
        [sys.executable, "-m", "agent", *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=timeout,
    )


def one_line_message(r: subprocess.CompletedProcess[str], *parts: str) -> None:
    """Stderr says what is wrong in one line naming `parts`, and is no traceback."""
    assert "Traceback" not in r.stderr, r.stderr
    lines = [line for line in r.stderr.splitlines() if all(p in line for p in parts)]
    assert lines, r.stderr


def restation(station: Path, **sections: Any) -> Path:
    """Rewrite the station's configuration with these sections changed (see `agent_config`)."""
    return write_config(
        station, agent_config(station.parent, device_id="d1", site="s1", **sections)
    )


@pytest.fixture
def station(tmp_path: Path) -> Path:
    """A station's configuration file (data and keys beside it; nothing has run yet)."""
    return restation(tmp_path / "tracescan.toml")


def scanned(cfg: Path, codes: list[str], source: str = "counter") -> None:
    """The agent stored these scans on the station of `cfg` and stopped."""
    agent = InProcessAgent(load(cfg))
    try:
        for code in codes:
            agent.process([RawScan(code, source, 1.7e9)])
    finally:
        agent.close()
