"""The one open/read/reopen loop of every scanner driver.

A scanner is unplugged, replugged, not there yet, busy, or simply breaks; none of that may end
its thread or the daemon. `ScannerThread.run` opens the device through the driver's
`_session()`, reads until `stop` or a fault, and after a fault waits (exponential backoff with
jitter, cut short by `stop`) and tries again. It never raises. Faults the driver expects
(`faults`: unplug, not found, permission) are logged without a traceback; anything else is a
driver bug, logged with its traceback and retried no faster than once a second.

It also keeps the scanner's `state` (drivers.state) and says so in the log when a device stays
absent: a WARNING after `absent_warning` seconds (once), a reminder every `absent_reminder`
seconds, and an INFO when it is back.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Final

from drivers.scan import RawScan, ScanSink
from drivers.state import AbsenceWatch, ScannerState, duration

#: The shortest wait after an unexpected error: a bug that fails at once must not spin.
_UNEXPECTED_WAIT: Final = 1.0


@dataclass(frozen=True, slots=True)
class ReconnectPolicy:
    """How a driver waits between attempts, and when an absent device is worth a log line."""

    initial: float = 0.1  # seconds before the first retry; doubles after each failure
    maximum: float = 5.0  # the longest wait between attempts
    #: Each wait is drawn from [(1 - jitter) * d, d], so scanners that lost power together
    #: do not retry in lockstep.
    jitter: float = 0.5
    absent_warning: float = 60.0  # seconds absent before the first WARNING
    absent_reminder: float = 3600.0  # seconds between reminders while it stays absent

    def __post_init__(self) -> None:
        if not 0 < self.initial <= self.maximum:
            raise ValueError(
                f"backoff needs 0 < initial <= maximum, got {self.initial}, {self.maximum}"
            )
        if not 0 <= self.jitter < 1:
            raise ValueError(f"jitter must be in [0, 1), got {self.jitter}")
        if self.absent_warning < 0 or self.absent_reminder <= 0:
            raise ValueError("absent_warning must be >= 0 and absent_reminder > 0")


#: The policy of serial and HID scanners.
DEFAULT_RECONNECT: Final = ReconnectPolicy()


class Backoff:
    """Exponential waits with jitter, reset once a device was open again.

    >>> b = Backoff(ReconnectPolicy(initial=1, maximum=4, jitter=0), rng=lambda: 0.5)
    >>> [b.next_wait() for _ in range(4)]
    [1.0, 2.0, 4.0, 4.0]
    >>> b.reset(); b.next_wait()
    1.0
    """

    def __init__(self, policy: ReconnectPolicy, rng: Callable[[], float] = random.random) -> None:
        self.policy = policy
        self._rng = rng
        self._next = policy.initial

    def reset(self) -> None:
        """Start again from the initial wait."""
        self._next = self.policy.initial

    def next_wait(self) -> float:
        """The wait before the next attempt; the one after it is twice as long (up to maximum)."""
        wait = self._next
        self._next = min(wait * 2, self.policy.maximum)
        return float(wait * (1 - self.policy.jitter * self._rng()))


class ScannerThread(threading.Thread):
    """A driver thread: open the device, read it until `stop`, and reopen it after any fault.

    Subclasses implement `_session()`: open, call `_opened()`, deliver scans with `_deliver()`,
    and return when `stop` is set (or raise). `faults` are the errors expected from hardware.
    A thread with `finite` set ends after a session that returns without error (a video file
    read to its end). `finished` is set when the thread is done.
    """

    faults: ClassVar[tuple[type[Exception], ...]] = (OSError,)

    def __init__(
        self,
        source: str,
        device: str,
        sink: ScanSink,
        stop: threading.Event,
        policy: ReconnectPolicy,
    ) -> None:
        super().__init__(name=f"scanner-{source}", daemon=True)
        self.source = source
        self.device = device
        self.sink = sink
        self.stop = stop
        self.policy = policy
        #: Present, open, last scan, last error: `state.snapshot()` from any thread.
        self.state = ScannerState(source, device)
        self.finished = threading.Event()
        #: The driver module's logger (drivers.serial, ...), so logs can be filtered by driver.
        self.log = logging.getLogger(type(self).__module__)
        #: End after a session that returns without error, instead of reopening.
        self.finite = False
        self._watch = AbsenceWatch(policy.absent_warning, policy.absent_reminder)

    @property
    def connected(self) -> threading.Event:
        """Set while the device is open."""
        return self.state.open_event

    @property
    def opens(self) -> int:
        """How many times the device was opened (diagnostics; tests count reconnects)."""
        return self.state.opens

    @property
    def failures(self) -> int:
        """Open attempts and sessions that failed."""
        return self.state.failures

    def send(self, data: bytes) -> bool:
        """Write host commands (beeper, LED) to the scanner; False when it cannot take them."""
        return False

    def run(self) -> None:
        """Open, read, and on any failure wait and reopen, until `stop`; never raises."""
        backoff = Backoff(self.policy)
        try:
            while not self.stop.is_set():
                opens = self.state.opens
                wait_at_least = 0.0
                try:
                    self._session()
                except self.faults as exc:
                    self._failed(exc)
                except Exception as exc:  # a driver fault must never end the daemon
                    self.log.exception(
                        "scanner %s: unexpected error; reopening %s", self.source, self.device
                    )
                    self._failed(exc, quiet=True)
                    wait_at_least = _UNEXPECTED_WAIT
                else:
                    self.state.closed()
                    if self.finite:
                        break
                if self.state.opens != opens:
                    backoff.reset()  # it worked for a while: come back quickly
                self.stop.wait(max(wait_at_least, backoff.next_wait()))
        finally:
            self.state.closed()
            try:
                self._release()
            except Exception:  # the thread ends either way
                self.log.exception("scanner %s: releasing the driver failed", self.source)
            self.finished.set()

    def _release(self) -> None:
        """Let go of what the driver holds for the thread's life (called once, as it ends)."""

    def _session(self) -> None:
        """Open the device and read it until `stop` (returns) or a fault (raises)."""
        raise NotImplementedError

    def _present(self, error: Exception) -> bool:
        """Whether the device is there after `error` (it may be there and still fail to open)."""
        return False

    def _opened(self, detail: str = "") -> None:
        """Called by `_session()` once the device is open and being read."""
        self.state.opened()
        away = self._watch.present(time.monotonic())
        back = f", back after {duration(away)}" if away is not None else ""
        more = f" ({detail})" if detail else ""
        self.log.info("scanner %s: reading %s%s%s", self.source, self.device, more, back)

    def _deliver(self, text: str, when: float, symbology: str | None = None) -> None:
        """Hand one scan to the sink."""
        self.state.scanned(when)
        self.sink(RawScan(text, self.source, when, symbology))

    def _failed(self, exc: Exception, *, quiet: bool = False) -> None:
        error = str(exc) or type(exc).__name__
        try:
            present = self._present(exc)
        except Exception:  # a probe that fails says nothing about the device
            present = False
        was_open = self.state.failed(error, present=present)
        if was_open and not quiet:
            self.log.warning(
                "scanner %s: %s lost (%s); reconnecting", self.source, self.device, error
            )
        elif not quiet:
            self.log.debug("scanner %s: cannot open %s (%s)", self.source, self.device, error)
        notice = self._watch.absent(time.monotonic())
        if notice is None:
            return
        what = "cannot be opened" if present else "is not there"
        if notice.first:
            self.log.warning(
                "scanner %s: %s %s for %s (%s); its scans are not read until it is back: check "
                "the cable and the configured device (still trying)",
                self.source,
                self.device,
                what,
                duration(notice.seconds),
                error,
            )
        else:
            self.log.warning(
                "scanner %s: %s still %s after %s (%s)",
                self.source,
                self.device,
                "unopenable" if present else "absent",
                duration(notice.seconds),
                error,
            )
