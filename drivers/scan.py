"""What every driver produces."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RawScan:
    """One read from one scanner, exactly as the hardware delivered it (decoded to text)."""

    text: str
    source: str
    received_at: float
    symbology: str | None = None


#: Where a driver delivers its scans (the daemon's inbox). Must not block for long.
ScanSink = Callable[[RawScan], None]
