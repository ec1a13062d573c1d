"""sd_notify and the watchdog, with a real AF_UNIX datagram socket standing in for systemd."""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent.ops.notify import SystemdNotifier
from hardware_sim.broker import free_port
from tests.harness import AgentProcess


class FakeManager:
    """The service manager's end: a datagram socket that keeps every message it receives."""

    def __init__(self, address: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(0.2)
        self.messages: list[str] = []

    def wait_for(self, predicate: Callable[[list[str]], bool], timeout: float = 15.0) -> bool:
        """Receive until `predicate(messages)` holds (or give up)."""
        attempts = int(timeout / 0.2)
        for _ in range(attempts):
            if predicate(self.messages):
                return True
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except TimeoutError:
                continue
        return predicate(self.messages)

    def close(self) -> None:
        """Release the socket."""
        self.sock.close()


@pytest.fixture
def manager() -> Iterator[tuple[FakeManager, str]]:
    """A manager on an abstract-namespace socket, as systemd uses ('@' in NOTIFY_SOCKET)."""
    name = f"tracescan-test-{os.getpid()}-{id(object())}"
    m = FakeManager("\0" + name)
    yield m, "@" + name
    m.close()


def test_notifier_sends_to_a_socket_path() -> None:
    with tempfile.TemporaryDirectory(prefix="ts-") as d:
        path = str(Path(d) / "notify")
        m = FakeManager(path)
        try:
            n = SystemdNotifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "4000000"})
            assert n.enabled
            assert n.watchdog_interval == 2.0
            assert n.ready("1 scanner(s)")
            assert n.watchdog()
            assert m.wait_for(lambda msgs: len(msgs) >= 2)
            assert m.messages[0].split("\n") == ["READY=1", "STATUS=1 scanner(s)"]
            assert m.messages[1] == "WATCHDOG=1"
        finally:
            m.close()


def test_notifier_is_silent_outside_systemd() -> None:
    n = SystemdNotifier({})
    assert not n.enabled
    assert n.watchdog_interval is None
    assert not n.ready()
    # A watchdog meant for another process (WATCHDOG_PID) is not ours to feed.
    other = SystemdNotifier({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": str(os.getpid() + 1)})
    assert other.watchdog_interval is None


def test_agent_ready_after_store_open_then_watchdog_pings(
    manager: tuple[FakeManager, str],
    make_config: Callable[..., Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    m, address = manager
    monkeypatch.setenv("NOTIFY_SOCKET", address)
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")  # a ping at least every 0.5 s
    agent = AgentProcess(make_config(mqtt_port=free_port())).start()
    try:
        assert m.wait_for(lambda msgs: any("READY=1" in x for x in msgs)), agent.stderr
        # READY=1 means the store is open and the API socket is listening.
        assert (tmp_path / "data" / "tracescan.db").exists()
        assert (tmp_path / "data" / "api.sock").exists()
        ready = next(i for i, x in enumerate(m.messages) if "READY=1" in x)
        assert m.wait_for(lambda msgs: msgs[ready:].count("WATCHDOG=1") >= 3)
        assert agent.terminate() == 0
        assert m.wait_for(lambda msgs: "STOPPING=1" in msgs)
        assert not (tmp_path / "data" / "api.sock").exists()
    finally:
        agent.stop()


@pytest.mark.parametrize("usec", ["\u00b2", "\u0663000000", "-1", "0", "", "1e6"])
def test_a_watchdog_interval_that_is_not_plain_digits_is_no_watchdog(usec: str) -> None:
    assert SystemdNotifier({"WATCHDOG_USEC": usec}).watchdog_interval is None
