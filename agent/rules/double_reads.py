"""Double reads: the same code from the same source inside a short window is absorbed."""

from __future__ import annotations

from typing import Final

#: Entries the double-read map holds before reads older than the window are swept out.
_SWEEP_AT: Final = 4096


class DoubleReadFilter:
    """Absorbs the same code from the same source inside `window` seconds.

    Scanners fire twice and cameras see one pack in many frames; such repeats are not
    errors for the worker and are not recorded. Memory is bounded: entries older than the
    window are dropped as new scans arrive.
    """

    def __init__(self, window: float = 1.5) -> None:
        self.window = window
        self._last: dict[tuple[str, str], float] = {}
        self._sweep_at = _SWEEP_AT
        self.absorbed = 0

    def forget(self, source: str, code: str) -> None:
        """Drop a read (its scan was refused for storage reasons: a rescan must count)."""
        self._last.pop((source, code), None)

    def repeat(self, source: str, code: str, at: float) -> bool:
        """True when this read repeats one inside the window (and is to be absorbed)."""
        if self.window <= 0:
            return False
        key = (source, code)
        prev = self._last.get(key)
        self._last[key] = at
        if len(self._last) > self._sweep_at:
            cutoff = at - self.window
            self._last = {k: t for k, t in self._last.items() if t >= cutoff}
            # A burst inside the window survives the sweep whole: sweeping again on every
            # read would cost O(entries) each; wait until the map has doubled instead.
            self._sweep_at = max(_SWEEP_AT, 2 * len(self._last))
        if prev is not None and 0 <= at - prev <= self.window:
            self.absorbed += 1
            return True
        return False
