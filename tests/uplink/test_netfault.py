"""The fault proxy itself, against a plain TCP echo server."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import pytest

from hardware_sim.netfault import NetFault


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


@pytest.fixture
def echo() -> Iterator[int]:
    """An echo server on a loopback port."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def proxy(echo: int) -> Iterator[NetFault]:
    """The proxy in front of the echo server."""
    with NetFault(echo) as p:
        yield p


def _connect(proxy: NetFault) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
    s.settimeout(5)
    return s


def _echo(s: socket.socket, payload: bytes) -> bytes:
    s.sendall(payload)
    got = b""
    while len(got) < len(payload):
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    return got


def _closed_by_peer(s: socket.socket) -> bool:
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True


def test_forwards_both_ways(proxy: NetFault) -> None:
    with _connect(proxy) as s:
        assert _echo(s, b"hello" * 1000) == b"hello" * 1000
    assert proxy.stats.accepted == 1


def test_cut_resets_open_connections(proxy: NetFault) -> None:
    with _connect(proxy) as s:
        assert _echo(s, b"x") == b"x"
        assert proxy.cut() == 1
        assert _closed_by_peer(s)
    with _connect(proxy) as s:  # new connections work again
        assert _echo(s, b"z") == b"z"


def test_blackhole_keeps_the_socket_open_and_drops_bytes(proxy: NetFault) -> None:
    with _connect(proxy) as s:
        proxy.blackhole(True)
        s.sendall(b"lost")
        s.settimeout(0.5)
        with pytest.raises(TimeoutError):
            s.recv(1)
        proxy.blackhole(False)
        s.settimeout(5)
        assert _echo(s, b"back") == b"back"
    assert proxy.stats.dropped_bytes >= 4


def test_refuse_closes_new_connections_only(proxy: NetFault) -> None:
    with _connect(proxy) as old:
        assert _echo(old, b"up") == b"up"  # proxied for sure before refusing starts
        proxy.refuse(True)
        with _connect(proxy) as new:
            assert _closed_by_peer(new)
        assert _echo(old, b"still") == b"still"
    assert proxy.stats.refused == 1


def test_latency_delays_but_keeps_order(proxy: NetFault) -> None:
    proxy.set_latency(0.2)
    with _connect(proxy) as s:
        began = time.monotonic()
        assert _echo(s, b"abc") == b"abc"
        # Structural, not a benchmark: the echo crosses the delayed proxy twice.
        assert time.monotonic() - began >= 0.4


def test_flap_cuts_on_a_schedule_until_steady(proxy: NetFault) -> None:
    proxy.flap(0.05, 0.1, seed=1)
    time.sleep(0.6)
    proxy.steady()
    cuts = proxy.stats.cuts
    assert cuts >= 3
    time.sleep(0.3)
    assert proxy.stats.cuts == cuts


def test_bandwidth_throttles_each_direction(proxy: NetFault) -> None:
    proxy.set_bandwidth(100_000)
    with _connect(proxy) as s:
        began = time.monotonic()
        assert _echo(s, b"b" * 50_000) == b"b" * 50_000
        # A lower bound only: 50 kB cannot cross a 100 kB/s pipe in less than 0.5 s.
        assert time.monotonic() - began >= 0.45
