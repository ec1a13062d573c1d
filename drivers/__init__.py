"""Scanner drivers: hardware in, `RawScan` out. No validation, no storage."""

from drivers.scan import RawScan, ScanSink

__all__ = ["RawScan", "ScanSink"]
