"""Serial and USB-CDC scanners (pyserial): one scan per terminated line.

A scan ends at CR or LF (CR LF counting once), at exactly CR, LF or CR LF, or at a
configurable suffix (some fixed scanners end with ETX or a custom string). The port is given
as a path or as a bare `/dev/serial/by-id` name, resolved at every (re)open so a replugged
scanner that came back as another ttyACM is found again.

An unplugged or vanished port is retried with backoff (drivers.reconnect) and never takes
the daemon down. The port is opened exclusively (flock), so a second program
(or ModemManager probing a ttyACM) cannot steal bytes from the middle of a scan; the udev rules
in config/udev/ also tell ModemManager to leave scanners alone.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal, get_args

import serial

from drivers.reconnect import DEFAULT_RECONNECT, ReconnectPolicy, ScannerThread
from drivers.scan import ScanSink

log = logging.getLogger(__name__)

TERMINATORS: Final = b"\r\n"
BY_ID_DIR: Final = Path("/dev/serial/by-id")
_READ_TIMEOUT: Final = 0.1

#: How a scan ends on the wire: `any` = CR or LF (CR LF once), or exactly one of the others.
Terminator = Literal["any", "cr", "lf", "crlf"]
TERMINATOR_NAMES: Final[tuple[str, ...]] = get_args(Terminator)
_EXACT: Final[dict[str, bytes]] = {"cr": b"\r", "lf": b"\n", "crlf": b"\r\n"}


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


class SuffixFramer:
    """Splits a byte stream at an exact terminator (CR LF, ETX, ...), even one split across reads.

    Bounded like `LineFramer`: a line longer than `max_line` is delivered cut to
    `max_line + 1` bytes (so recognition refuses it) and the rest up to the terminator dropped.
    """

    def __init__(self, suffix: bytes, max_line: int = 4096) -> None:
        if not suffix:
            raise ValueError("the suffix that ends a scan cannot be empty")
        self.suffix = suffix
        self.max_line = max_line
        self._buf = bytearray()
        self._cut = False

    def feed(self, data: bytes) -> list[bytes]:
        """Add bytes; return the complete lines they finish."""
        self._buf += data
        out: list[bytes] = []
        while (i := self._buf.find(self.suffix)) >= 0:
            line = bytes(self._buf[:i])
            del self._buf[: i + len(self.suffix)]
            if self._cut:
                self._cut = False  # the head of this over-long line was already delivered
            elif line:
                out.append(line)
        if not self._cut and len(self._buf) > self.max_line + len(self.suffix) - 1:
            out.append(bytes(self._buf[: self.max_line + 1]))
            self._cut = True
        if self._cut:
            # Keep only what could be the start of a suffix split across reads.
            keep = len(self.suffix) - 1
            self._buf = self._buf[len(self._buf) - keep :] if keep else bytearray()
        return out


Framer = LineFramer | SuffixFramer


def make_framer(
    terminator: Terminator = "any", suffix: bytes = b"", max_line: int = 4096
) -> Framer:
    """The framer for a port: an explicit suffix wins over the terminator setting."""
    if suffix:
        return SuffixFramer(suffix, max_line)
    if terminator == "any":
        return LineFramer(max_line)
    return SuffixFramer(_EXACT[terminator], max_line)


def resolve_port(port: str, by_id_dir: Path = BY_ID_DIR) -> str:
    """A bare name (no `/`) is a `/dev/serial/by-id` entry; paths are used as given."""
    return port if "/" in port else str(by_id_dir / port)


class _KeepInputSerial(serial.Serial):
    """pyserial flushes the input queue on open; that would throw away a scan made between a
    replug and our reopen (the bytes wait in the tty or the device until someone opens it)."""

    def _reset_input_buffer(self) -> None:
        return


@dataclass(frozen=True, slots=True)
class SerialOptions:
    """One serial scanner: where it is and how its scans end on the wire."""

    name: str  # the scans' source
    port: str  # a device path, or a bare `/dev/serial/by-id` name
    baudrate: int = 9600
    max_line: int = 4096  # longer lines are cut (and refused by recognition)
    terminator: Terminator = "any"
    suffix: bytes = b""  # exact bytes that end a scan; wins over `terminator`
    reconnect: ReconnectPolicy = DEFAULT_RECONNECT

    def __post_init__(self) -> None:
        if not self.port:
            raise ValueError(f"scanner {self.name}: no serial port given")
        if self.terminator not in TERMINATOR_NAMES:
            raise ValueError(
                f"terminator {self.terminator!r} is not one of {', '.join(TERMINATOR_NAMES)}"
            )
        if self.baudrate <= 0 or self.max_line <= 0:
            raise ValueError("baudrate and max_line must be positive")

    def make_thread(self, sink: ScanSink, stop: threading.Event) -> SerialScanner:
        """The (not yet started) driver thread."""
        return SerialScanner(self, sink, stop)


class SerialScanner(ScannerThread):
    """Reads one serial port until `stop` is set, reopening it whenever it goes away."""

    faults = (serial.SerialException, OSError)

    def __init__(self, options: SerialOptions, sink: ScanSink, stop: threading.Event) -> None:
        super().__init__(options.name, options.port, sink, stop, options.reconnect)
        self.options = options
        self._port: serial.Serial | None = None  # the open port, for `send` (beeper commands)

    def send(self, data: bytes) -> bool:
        """Write host commands (beeper, LED) to the scanner; False when the port is not open.

        Called from the daemon's writer thread while this thread reads: a tty allows one
        reader and one writer at once, so no lock is needed.
        """
        port = self._port
        if port is None:
            return False
        try:
            port.write(data)
        except (serial.SerialException, OSError) as exc:
            log.debug("scanner %s: cannot send %d byte(s) (%s)", self.source, len(data), exc)
            return False
        return True

    def _present(self, error: Exception) -> bool:
        return os.path.exists(resolve_port(self.options.port))

    def _session(self) -> None:
        opts = self.options
        path = resolve_port(opts.port)
        with _KeepInputSerial(path, opts.baudrate, timeout=_READ_TIMEOUT, exclusive=True) as port:
            framer = make_framer(opts.terminator, opts.suffix, opts.max_line)
            self._opened()
            self._port = port
            try:
                while not self.stop.is_set():
                    data = port.read(max(1, port.in_waiting))
                    if not data:
                        continue
                    now = time.time()
                    for line in framer.feed(data):
                        self._deliver(line.decode("utf-8", errors="replace"), now)
            finally:
                self._port = None
