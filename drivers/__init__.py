"""Scanner drivers: hardware in, `RawScan` out. No validation, no storage, nothing from `agent`.

Each driver module defines its own frozen options (`drivers.serial.SerialOptions`,
`drivers.hid.HidOptions`, `drivers.camera.CameraOptions`) with typed values, and
`open_scanner(options, sink, stop)` turns any of them into the driver's thread. A driver module
is imported only by whoever builds its options, so a station with a serial scanner never loads
OpenCV. Every thread shares one reconnect loop (`drivers.reconnect`) and exposes its state as
`thread.state.snapshot()` (`drivers.state.ScannerSnapshot`).
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

from drivers.reconnect import ReconnectPolicy, ScannerThread
from drivers.scan import RawScan, ScanSink
from drivers.state import ScannerSnapshot, ScannerState

__all__ = [
    "RawScan",
    "ReconnectPolicy",
    "ScanSink",
    "ScannerOptions",
    "ScannerSnapshot",
    "ScannerState",
    "ScannerThread",
    "open_scanner",
]

log = logging.getLogger(__name__)


class ScannerOptions(Protocol):
    """What every driver's options have: the scanner's name and the thread they describe."""

    @property
    def name(self) -> str:
        """The scanner's name: the `source` of its scans."""

    def make_thread(self, sink: ScanSink, stop: threading.Event) -> ScannerThread:
        """The driver thread for these options (not started); may raise if it cannot be set up."""


def open_scanner(
    options: ScannerOptions, sink: ScanSink, stop: threading.Event
) -> ScannerThread | None:
    """The (not yet started) driver thread for `options`, or None when it cannot be set up.

    A driver that cannot be set up (its library is missing, say libzbar for pyzbar) is logged
    and skipped, never fatal: the other scanners keep working.
    """
    try:
        return options.make_thread(sink, stop)
    except (ValueError, OSError, ImportError) as exc:
        log.error("scanner %s: cannot be set up (%s); skipped", options.name, exc)
        return None
