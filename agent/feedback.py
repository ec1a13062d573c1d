"""Telling the worker, at once, whether a scan counted."""

from __future__ import annotations

import sys
import threading
from typing import Protocol, TextIO

from agent.policy import Decision
from drivers import RawScan


class Feedback(Protocol):
    """An output the worker sees or hears (console, beeper, local API, ...)."""

    def decided(self, scan: RawScan, decision: Decision, seq: int | None) -> None:
        """Called once per scan, after the decision is durable (or definitely refused)."""


def mask(code: str) -> str:
    """Enough of a code for the worker to recognise the pack, without the full serial."""
    if len(code) <= 8:
        return code
    return f"{code[:7]}…{code[-4:]}"


class ConsoleFeedback:
    """One line per scan on a terminal: ✔ for recorded, ✘ with the reason for refused."""

    def __init__(self, lang: str = "zh", stream: TextIO | None = None) -> None:
        self.lang = lang
        self.stream = stream or sys.stdout
        self._lock = threading.Lock()

    def decided(self, scan: RawScan, decision: Decision, seq: int | None) -> None:
        """Print the verdict line."""
        if decision.accepted:
            line = f"✔ [{scan.source}] seq={seq} {decision.kind}/{decision.level} {mask(decision.text)}"
        else:
            line = f"✘ [{scan.source}] {decision.reason}: {decision.message(self.lang)}"
        with self._lock:
            print(line, file=self.stream, flush=True)
