"""Serial driver on real ptys: framing across reads, garbage, exclusivity, unplug/replug."""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.reconnect import ReconnectPolicy
from drivers.scan import RawScan
from drivers.serial import (
    LineFramer,
    SerialOptions,
    SerialScanner,
    SuffixFramer,
    make_framer,
    resolve_port,
)
from hardware_sim.serial_scanner import VirtualSerialScanner

CODES = [f"8{n:019d}" for n in range(1, 6)]
FAST = ReconnectPolicy(initial=0.005, maximum=0.05)


class Driver:
    """A running SerialScanner whose scans land in a queue."""

    def __init__(self, port: str, **kw: object) -> None:
        self.scans: queue.Queue[RawScan] = queue.Queue()
        self.stop = threading.Event()
        options = SerialOptions("s0", port, reconnect=FAST, **kw)  # type: ignore[arg-type]
        self.thread = SerialScanner(options, self.scans.put, self.stop)
        self.thread.start()
        assert self.thread.connected.wait(5)

    def take(self, n: int, timeout: float = 5.0) -> list[str]:
        return [self.scans.get(timeout=timeout).text for _ in range(n)]

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=2)


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[VirtualSerialScanner]:
    with VirtualSerialScanner(tmp_path / "ttyScanner") as s:
        yield s


@pytest.fixture
def driver(sim: VirtualSerialScanner) -> Iterator[Driver]:
    d = Driver(sim.port)
    yield d
    d.close()


def test_partial_writes_and_crlf_split_across_reads(
    sim: VirtualSerialScanner, driver: Driver
) -> None:
    code = CODES[0]
    for chunk in (code[:3], code[3:11], code[11:], "\r"):
        sim.write(chunk.encode())
        time.sleep(0.02)  # separate reads on the driver side
    sim.write(b"\n" + CODES[1].encode() + b"\r")
    time.sleep(0.02)
    sim.write(b"\n")
    assert driver.take(2) == CODES[:2]
    assert driver.scans.empty()


def test_garbage_bytes_are_delivered_as_text_and_do_not_stop_the_driver(
    sim: VirtualSerialScanner, driver: Driver
) -> None:
    sim.write(b"\xff\xfe\x00\x1b[2J" + b"\r\n")
    sim.write(b"\x80" * 10_000 + b"\n")  # longer than max_line: cut, never unbounded
    sim.scan(CODES[2])
    first, second, third = driver.take(3)
    assert first == "\ufffd\ufffd\x00\x1b[2J"
    assert len(second) == 4097
    assert third == CODES[2]
    assert driver.thread.is_alive()


def test_suffix_framing_on_a_real_pty(tmp_path: Path) -> None:
    with VirtualSerialScanner(tmp_path / "tty", terminator=b"\x03") as sim:
        d = Driver(sim.port, suffix=b"\x03")
        try:
            sim.write(b"0106912345678904\r\n21AB")
            time.sleep(0.02)
            sim.write(b"C\x03" + CODES[0].encode() + b"\x03")
            # CR LF inside the data is data when the scanner ends scans with ETX.
            assert d.take(2) == ["0106912345678904\r\n21ABC", CODES[0]]
        finally:
            d.close()


def test_port_is_exclusive(sim: VirtualSerialScanner, driver: Driver) -> None:
    with pytest.raises(serial.SerialException, match="exclusively lock"):
        serial.Serial(sim.port, exclusive=True).close()


def test_by_id_names_resolve_under_dev_serial_by_id() -> None:
    assert resolve_port("usb-Zebra_DS9308-if00") == "/dev/serial/by-id/usb-Zebra_DS9308-if00"
    assert resolve_port("/dev/ttyACM0") == "/dev/ttyACM0"


def test_hundred_unplug_replug_cycles_lose_no_scan_after_replug(
    sim: VirtualSerialScanner, driver: Driver
) -> None:
    for cycle in range(100):
        opens = driver.thread.opens
        sim.replug()
        # Scanned at once after replug, before the driver has reopened: must still arrive.
        sim.scan(f"8{cycle:019d}")
        assert driver.take(1) == [f"8{cycle:019d}"]
        assert driver.thread.opens > opens
    assert driver.thread.is_alive()


@pytest.mark.parametrize(
    ("terminator", "stream", "expected"),
    [
        ("any", b"A\r\nB\rC\nD\n\r\n", [b"A", b"B", b"C", b"D"]),
        ("cr", b"A\rB\nC\r", [b"A", b"B\nC"]),
        ("lf", b"A\nB\rC\n", [b"A", b"B\rC"]),
        ("crlf", b"A\r\nB\rC\r\n", [b"A", b"B\rC"]),
    ],
)
def test_terminator_modes(terminator: str, stream: bytes, expected: list[bytes]) -> None:
    framer = make_framer(terminator)  # type: ignore[arg-type]
    # Byte by byte: every split of the terminator across reads.
    assert [line for b in stream for line in framer.feed(bytes([b]))] == expected


@settings(max_examples=80, deadline=None)
@given(
    lines=st.lists(
        st.binary(min_size=1, max_size=40).filter(
            lambda b: b"\x03\x04" not in b and not b.endswith(b"\x03")
        ),
        max_size=8,
    ),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=6),
)
def test_suffix_framer_any_split_gives_the_same_lines(lines: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(line + b"\x03\x04" for line in lines)
    framer = SuffixFramer(b"\x03\x04", max_line=4096)
    points = sorted({0, len(stream), *(c for c in cuts if c < len(stream))})
    got = [line for a, b in itertools.pairwise(points) for line in framer.feed(stream[a:b])]
    assert got == lines


def test_suffix_framer_bounds_an_endless_line() -> None:
    framer = SuffixFramer(b"\r\n", max_line=64)
    out = []
    for _ in range(1000):
        out += framer.feed(b"x" * 100)
    out += framer.feed(b"\r\nok\r\n")
    assert out == [b"x" * 65, b"ok"]
    assert len(LineFramer(64).feed(b"y" * 1000 + b"\n")[0]) == 65
