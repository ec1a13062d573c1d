"""Wall-clock steps, noticed against the monotonic clock, and the time decisions trust.

A Pi without a battery-backed clock boots with a stale time and steps forward when NTP syncs;
a misconfigured or tampered clock can step back. Records keep the wall clock (it is what the
record says), but decisions must stay sane across a step:
- a step back must not make an expired pack look valid: expiry is judged at the *trusted*
  time, which keeps running with the monotonic clock across a step back (and, at start, is
  not behind the newest stored record by more than a bounded offset);
- double reads are told apart by the monotonic clock (see `RawScan.mono`), so a step back
  cannot turn one physical scan into two (a fake 回流 stop);
- a step either way is logged and raised as an alert, and retention pauses after it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

#: Differences between the wall and the monotonic clock below this are drift, not a step.
STEP_TOLERANCE: Final = 120.0
#: At start there is no monotonic continuity: the newest stored record may set the trusted
#: time ahead of the wall clock by at most this much (a record stored by a clock that was
#: wrongly far ahead must not make every pack look expired for months).
MAX_START_OFFSET: Final = 7 * 86400.0


@dataclass(frozen=True, slots=True)
class ClockStep:
    """The wall clock moved by `seconds` more (or, negative, less) than the monotonic clock."""

    seconds: float

    def describe(self) -> str:
        """An operator's sentence about the step."""
        way = "forward" if self.seconds > 0 else "back"
        return (
            f"the wall clock stepped {way} by {abs(self.seconds):.0f} s: expiry is judged at the"
            " trusted time, double reads by the monotonic clock, and retention pauses a day"
        )


class TrustedTime:
    """The wall clock plus the offset by which it is known to be behind (never ahead)."""

    def __init__(self, wall: float, mono: float, newest_stored: float | None) -> None:
        self._mono = mono
        self._wall = wall
        self.offset = 0.0  # seconds the trusted time is ahead of the wall clock
        self.at_start: ClockStep | None = None
        behind = (newest_stored or wall) - wall
        if behind > STEP_TOLERANCE:
            # The clock is behind the newest record stored here: it stepped back while the
            # agent was down (or the device booted with a stale clock).
            self.offset = min(behind, MAX_START_OFFSET)
            self.at_start = ClockStep(-behind)

    def observe(self, wall: float, mono: float) -> ClockStep | None:
        """Compare the clocks since the last observation; the step, if the wall clock made one."""
        expected = self._wall + self.offset + (mono - self._mono)
        behind = expected - wall  # how far the wall clock is behind the trusted time now
        self._wall, self._mono = wall, mono
        if behind - self.offset > STEP_TOLERANCE:  # stepped back: keep trusted time running
            step = ClockStep(-(behind - self.offset))
            self.offset = behind
            return step
        if self.offset - behind > STEP_TOLERANCE:  # stepped forward: trust the new time
            step = ClockStep(self.offset - behind)
            self.offset = max(0.0, behind)
            return step
        return None

    def trusted(self, wall: float) -> float:
        """The time decisions use for a moment whose wall clock read `wall`."""
        return wall + self.offset
