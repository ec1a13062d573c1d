"""What a scanner thread knows about its device: present, open, last scan, last error.

`ScannerState` is written by the driver thread and read from any other thread (status, metrics,
the local API) through `snapshot()`, which returns a frozen `ScannerSnapshot`; one lock keeps
the fields of a snapshot consistent with each other.

`AbsenceWatch` is the pure rule for when a missing device deserves a log line: a scanner that
is unplugged, mistyped in the configuration or not yet plugged in is otherwise only visible at
DEBUG, and the counter silently stops recording. It answers once after `warn_after` seconds,
then every `remind_every` seconds, with the clock passed in.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ScannerSnapshot:
    """One scanner's state at one moment (times are wall-clock epoch seconds)."""

    source: str  # the scanner's name, as in every `RawScan.source` it delivers
    device: str  # the port, device selector or camera source it was configured with
    present: bool  # the device was found at the last attempt (it may still fail to open)
    open: bool  # it is open and being read right now
    opens: int  # how many times it was opened
    failures: int  # open attempts and reading sessions that ended in an error
    last_scan: float | None  # when it last delivered a scan
    last_error: str | None  # why the last attempt or session failed
    absent_since: float | None  # since when it has not been open (None while open)

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON (status, local API)."""
        return asdict(self)


class ScannerState:
    """The thread-safe state of one scanner; the driver thread is its only writer."""

    def __init__(self, source: str, device: str, clock: Callable[[], float] = time.time) -> None:
        self.source = source
        self.device = device
        self._clock = clock
        self._lock = threading.Lock()
        self._present = False
        self._opens = 0
        self._failures = 0
        self._last_scan: float | None = None
        self._last_error: str | None = None
        self._absent_since: float | None = clock()
        #: Set while the device is open: tests and callers can wait for it.
        self.open_event = threading.Event()

    def opened(self) -> None:
        """The device is open and being read."""
        with self._lock:
            self._present = True
            self._opens += 1
            self._last_error = None
            self._absent_since = None
            self.open_event.set()

    def scanned(self, when: float) -> None:
        """A scan was delivered at `when`."""
        with self._lock:
            self._last_scan = when

    def failed(self, error: str, *, present: bool) -> bool:
        """An attempt or a session failed; returns whether the device had been open."""
        with self._lock:
            was_open = self.open_event.is_set()
            self._close()
            self._present = present
            self._failures += 1
            self._last_error = error
            return was_open

    def closed(self) -> None:
        """A session ended without an error (stop requested, or a file read to its end)."""
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self.open_event.is_set() or self._absent_since is None:
            self._absent_since = self._clock()
        self.open_event.clear()

    @property
    def opens(self) -> int:
        """How many times the device was opened."""
        with self._lock:
            return self._opens

    @property
    def failures(self) -> int:
        """Attempts and sessions that failed."""
        with self._lock:
            return self._failures

    def snapshot(self) -> ScannerSnapshot:
        """All fields at one moment."""
        with self._lock:
            return ScannerSnapshot(
                source=self.source,
                device=self.device,
                present=self._present,
                open=self.open_event.is_set(),
                opens=self._opens,
                failures=self._failures,
                last_scan=self._last_scan,
                last_error=self._last_error,
                absent_since=self._absent_since,
            )


@dataclass(frozen=True, slots=True)
class AbsenceNotice:
    """A log line is due: the device has been absent for `seconds`."""

    seconds: float
    first: bool  # the first notice of this absence (later ones are reminders)


class AbsenceWatch:
    """When to say that a device is absent: once after `warn_after` s, then every `remind_every` s.

    >>> watch = AbsenceWatch(warn_after=60, remind_every=3600)
    >>> watch.absent(0.0), watch.absent(59.0)
    (None, None)
    >>> watch.absent(61.0)
    AbsenceNotice(seconds=61.0, first=True)
    >>> watch.absent(600.0), watch.absent(3661.0)
    (None, AbsenceNotice(seconds=3661.0, first=False))
    >>> watch.present(3700.0)  # back: how long it was away, since that was reported
    3700.0
    >>> watch.absent(3800.0), watch.present(3801.0)  # a short absence is not worth a line
    (None, None)
    """

    def __init__(self, warn_after: float, remind_every: float) -> None:
        self.warn_after = warn_after
        self.remind_every = remind_every
        self._since: float | None = None
        self._due = 0.0
        self._reported = False

    def absent(self, now: float) -> AbsenceNotice | None:
        """The device is still (or newly) absent at `now`; a notice when a line is due."""
        if self._since is None:
            self._since = now
            self._due = now + self.warn_after
        if now < self._due:
            return None
        first = not self._reported
        self._reported = True
        self._due = now + self.remind_every
        return AbsenceNotice(now - self._since, first)

    def present(self, now: float) -> float | None:
        """The device is back at `now`; how long it was away if that absence was reported."""
        away = now - self._since if self._since is not None and self._reported else None
        self._since = None
        self._reported = False
        return away


def duration(seconds: float) -> str:
    """A duration as an operator reads it in a log line.

    >>> duration(42), duration(61), duration(7200), duration(2 * 86400 + 5)
    ('42 s', '1 min', '2 h', '2 d')
    """
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds // 60:.0f} min"
    if seconds < 86400:
        return f"{seconds // 3600:.0f} h"
    return f"{seconds // 86400:.0f} d"
