"""Serial and USB-CDC scanners (pyserial): one scan per CR/LF-terminated line.

The driver owns its reconnect loop: an unplugged or vanished port is retried with backoff
and never takes the daemon down. The port is opened exclusively (flock), so a second program
(or ModemManager probing a ttyACM) cannot steal bytes from the middle of a scan.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Final

import serial

from drivers.scan import RawScan, ScanSink

log = logging.getLogger(__name__)

TERMINATORS: Final = b"\r\n"
_READ_TIMEOUT: Final = 0.1


class LineFramer:
    """Splits a byte stream into scans at CR or LF; CR LF (or any run of them) counts once.

    A line longer than `max_line` is cut off: its first `max_line + 1` bytes are delivered
    (so recognition refuses it as too long, with a reason) and the rest up to the next
    terminator is discarded, keeping memory bounded whatever the scanner sends.
    """

    def __init__(self, max_line: int = 4096) -> None:
        self.max_line = max_line
        self._buf = bytearray()
        self._overflow = False

    def feed(self, data: bytes) -> list[bytes]:
        """Add bytes; return the complete lines they finish."""
        out: list[bytes] = []
        start = 0
        for i, b in enumerate(data):
            if b in TERMINATORS:
                self._take(data[start:i])
                if self._buf:
                    out.append(bytes(self._buf))
                self._buf.clear()
                self._overflow = False
                start = i + 1
        self._take(data[start:])
        return out

    def _take(self, chunk: bytes) -> None:
        if self._overflow or not chunk:
            return
        room = self.max_line + 1 - len(self._buf)
        self._buf += chunk[:room]
        if len(chunk) >= room:
            self._overflow = True


class SerialScanner(threading.Thread):
    """Reads one serial port until `stop` is set, reopening it whenever it goes away."""

    def __init__(
        self,
        name: str,
        port: str,
        sink: ScanSink,
        stop: threading.Event,
        *,
        baudrate: int = 9600,
        max_line: int = 4096,
        backoff_max: float = 5.0,
    ) -> None:
        super().__init__(name=f"scanner-{name}", daemon=True)
        self.source = name
        self.port = port
        self.sink = sink
        self.stop = stop
        self.baudrate = baudrate
        self.max_line = max_line
        self.backoff_max = backoff_max
        self.connected = threading.Event()

    def run(self) -> None:
        delay = 0.1
        while not self.stop.is_set():
            try:
                self._read_port()
                delay = 0.1
            except (serial.SerialException, OSError) as exc:
                if self.connected.is_set():
                    log.warning(
                        "scanner %s: port %s lost (%s); reconnecting", self.source, self.port, exc
                    )
                else:
                    log.debug("scanner %s: cannot open %s (%s)", self.source, self.port, exc)
                self.connected.clear()
                self.stop.wait(delay)
                delay = min(delay * 2, self.backoff_max)
            except Exception:  # a driver fault must never end the daemon
                log.exception("scanner %s: unexpected error; restarting the port", self.source)
                self.connected.clear()
                self.stop.wait(1.0)

    def _read_port(self) -> None:
        with serial.Serial(self.port, self.baudrate, timeout=_READ_TIMEOUT, exclusive=True) as port:
            framer = LineFramer(self.max_line)
            self.connected.set()
            log.info("scanner %s: reading %s", self.source, self.port)
            while not self.stop.is_set():
                data = port.read(max(1, port.in_waiting))
                if not data:
                    continue
                now = time.time()
                for line in framer.feed(data):
                    self.sink(RawScan(line.decode("utf-8", errors="replace"), self.source, now))
