"""Test harness: the agent as a real subprocess, with its config, keys and console output."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

CONFIG_TEMPLATE = """\
[device]
id = "{device}"
site = "{site}"
data_dir = "{data_dir}"
key_dir = "{key_dir}"
lang = "en"

{scanners}

[operation]
mode = "{op}"

[mqtt]
host = "127.0.0.1"
port = {mqtt_port}
topic_prefix = "tracescan/v1"
keepalive = 5
backoff_initial = 0.05
backoff_max = 0.5
{mqtt_extra}

[catalog]
path = "{catalog}"
"""


class AgentProcess:
    """`python -m agent run` in a child process; stdout (worker feedback) is collected."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.lines: list[str] = []
        self.proc: subprocess.Popen[str] | None = None
        self._cond = threading.Condition()

    def start(self) -> AgentProcess:
        """Launch the agent."""
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "agent", "run", "--config", str(self.config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines = []
        self.stderr: list[str] = []
        self._pumps = [
            threading.Thread(target=self._pump, args=(self.proc,), daemon=True),
            threading.Thread(target=self._pump_err, args=(self.proc,), daemon=True),
        ]
        for t in self._pumps:
            t.start()
        return self

    def _reap(self) -> None:
        for t in self._pumps:
            t.join(5)

    def _pump(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        with proc.stdout:
            for line in proc.stdout:
                with self._cond:
                    self.lines.append(line.rstrip("\n"))
                    self._cond.notify_all()

    def _pump_err(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        with proc.stderr:
            for line in proc.stderr:
                with self._cond:
                    self.stderr.append(line.rstrip("\n"))
                    self._cond.notify_all()

    def confirmed(self) -> list[str]:
        """Feedback lines of accepted scans."""
        with self._cond:
            return [ln for ln in self.lines if ln.startswith("✔")]

    def refused(self) -> list[str]:
        """Feedback lines of refused scans."""
        with self._cond:
            return [ln for ln in self.lines if ln.startswith("✘")]

    def wait_for(self, predicate: Callable[[AgentProcess], bool], timeout: float = 20.0) -> bool:
        """Wait until `predicate(self)` holds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.1))
        return True

    def terminate(self, timeout: float = 10.0) -> int:
        """SIGTERM and wait; returns the exit status."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        status = self.proc.wait(timeout)
        self._reap()
        return status

    def kill9(self) -> None:
        """SIGKILL: the power-cut stand-in."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)
        self._reap()

    def stop(self) -> None:
        """Make sure the process is gone."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if self.proc:
            self._reap()
