"""The one reconnect loop of all drivers: never raises, backs off with jitter, stops on `stop`,
keeps the scanner's state and says when a device stays absent and when it is back."""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from drivers.reconnect import Backoff, ReconnectPolicy, ScannerThread
from drivers.scan import RawScan
from drivers.serial import SerialOptions, SerialScanner
from hardware_sim.serial_scanner import VirtualSerialScanner
from tests import harness


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    return harness.wait_until(predicate, timeout, step=0.005)


def test_waits_double_up_to_the_maximum_and_jitter_only_shortens_them() -> None:
    policy = ReconnectPolicy(initial=0.1, maximum=1.6, jitter=0.5)
    backoff = Backoff(policy, rng=random.Random(7).random)
    waits = [backoff.next_wait() for _ in range(8)]
    steps = [0.1, 0.2, 0.4, 0.8, 1.6, 1.6, 1.6, 1.6]
    assert all(step / 2 <= w <= step for w, step in zip(waits, steps, strict=True))
    assert len(set(waits)) == len(waits)  # jittered: no two scanners retry in lockstep
    backoff.reset()
    assert backoff.next_wait() <= 0.1


def test_policy_refuses_impossible_values() -> None:
    for bad in (
        {"initial": 0.0},
        {"initial": 2.0, "maximum": 1.0},
        {"jitter": 1.0},
        {"absent_reminder": 0.0},
    ):
        with pytest.raises(ValueError):
            ReconnectPolicy(**bad)


class ScriptedDriver(ScannerThread):
    """A driver whose sessions follow a script: each step opens and/or fails as told."""

    def __init__(self, script: list[str], policy: ReconnectPolicy) -> None:
        self.scans: queue.Queue[RawScan] = queue.Queue()
        super().__init__("scripted", "/dev/scripted", self.scans.put, threading.Event(), policy)
        self.script = script

    def _session(self) -> None:
        step = self.script.pop(0) if self.script else "read-until-stop"
        if step == "absent":
            raise FileNotFoundError(2, "No such file or directory")
        if step == "bug":
            raise RuntimeError("a driver bug")
        self._opened()
        self._deliver(f"scan-{self.opens}", time.time())
        if step == "lost":
            raise OSError(5, "Input/output error")
        self.stop.wait()


def test_no_fault_ends_the_thread_and_stop_ends_it(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    policy = ReconnectPolicy(initial=0.01, maximum=0.02)
    driver = ScriptedDriver(["absent", "bug", "lost", "absent"], policy)
    driver.start()
    try:
        assert wait_until(lambda: driver.opens == 2 and driver.connected.is_set())
        assert driver.is_alive()
        assert [driver.scans.get(timeout=5).text for _ in range(2)] == ["scan-1", "scan-2"]
        state = driver.state.snapshot()
        assert (state.open, state.present, state.opens, state.failures) == (True, True, 2, 4)
        assert state.last_error is None
        assert state.last_scan is not None
    finally:
        driver.stop.set()
        driver.join(timeout=5)
    assert not driver.is_alive()
    assert driver.finished.is_set()
    assert driver.state.snapshot().open is False
    said = [(r.levelno, r.getMessage()) for r in caplog.records]
    lost = "scanner scripted: /dev/scripted lost ([Errno 5] Input/output error); reconnecting"
    assert (logging.WARNING, lost) in said
    assert (logging.INFO, "scanner scripted: reading /dev/scripted") in said
    bug = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(bug) == 1
    assert bug[0].exc_info is not None  # an unexpected error keeps its traceback


def test_stop_cuts_a_long_backoff_short() -> None:
    driver = ScriptedDriver(["absent"], ReconnectPolicy(initial=3600, maximum=3600))
    driver.start()
    assert wait_until(lambda: driver.failures == 1)
    driver.stop.set()
    driver.join(timeout=5)
    assert not driver.is_alive()


def test_an_absent_serial_port_is_warned_about_reminded_and_welcomed_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="drivers")
    link = tmp_path / "ttyScanner"
    policy = ReconnectPolicy(initial=0.01, maximum=0.01, absent_warning=0.05, absent_reminder=0.2)
    scans: queue.Queue[RawScan] = queue.Queue()
    driver = SerialScanner(
        SerialOptions("counter", str(link), reconnect=policy), scans.put, threading.Event()
    )
    driver.start()

    def messages(level: int) -> list[str]:
        return [r.getMessage() for r in list(caplog.records) if r.levelno == level]

    try:
        assert wait_until(lambda: any("still absent" in m for m in messages(logging.WARNING)))
        warnings = messages(logging.WARNING)
        first = [m for m in warnings if "is not there for" in m]
        assert len(first) == 1  # once, then reminders
        assert first[0].startswith(f"scanner counter: {link} is not there for ")
        said_by = {r.name for r in caplog.records if "is not there for" in r.getMessage()}
        assert said_by == {"drivers.serial"}  # filterable by driver
        assert "No such file or directory" in first[0]
        absent = driver.state.snapshot()
        assert (absent.present, absent.open, absent.opens) == (False, False, 0)
        assert absent.absent_since is not None
        assert absent.last_error is not None
        assert "No such file or directory" in absent.last_error

        with VirtualSerialScanner(link) as sim:
            assert wait_until(lambda: any("back after" in m for m in messages(logging.INFO)))
            back = [m for m in messages(logging.INFO) if "back after" in m]
            assert back[0].startswith(f"scanner counter: reading {link}, back after ")
            sim.scan("81234560000000011234")
            assert scans.get(timeout=5).text == "81234560000000011234"
            present = driver.state.snapshot()
            assert (present.present, present.open, present.opens, present.absent_since) == (
                True,
                True,
                1,
                None,
            )
            assert present.last_scan is not None
    finally:
        driver.stop.set()
        driver.join(timeout=5)
    assert not driver.is_alive()
