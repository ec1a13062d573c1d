"""The real `tracescan` in a child process, and a station configuration to point it at."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

STATION = """\
[device]
id = "d1"
site = "s1"
data_dir = "data"
key_dir = "keys"
[mqtt]
port = 1
"""


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


@pytest.fixture
def station(tmp_path: Path) -> Path:
    """A station's configuration file (data and keys beside it; nothing has run yet)."""
    cfg = tmp_path / "tracescan.toml"
    cfg.write_text(STATION, encoding="utf-8")
    return cfg
