"""What every driver produces."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class RawScan:
    """One read from one scanner, exactly as the hardware delivered it (decoded to text).

    `received_at` is the wall clock (what the record says); `mono` the monotonic clock at the
    same moment, which a wall-clock step cannot move (double reads and clock checks use it).
    """

    text: str
    source: str
    received_at: float
    symbology: str | None = None
    mono: float = field(default_factory=time.monotonic)


#: Where a driver delivers its scans (the daemon's inbox). Must not block for long.
ScanSink = Callable[[RawScan], None]
