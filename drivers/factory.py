"""Build the driver thread for one `[[scanner]]` table."""

from __future__ import annotations

import logging
import threading

from agent.config import ScannerConfig
from drivers.scan import ScanSink
from drivers.serial import SerialScanner

log = logging.getLogger(__name__)


def open_scanner(
    cfg: ScannerConfig, sink: ScanSink, stop: threading.Event
) -> threading.Thread | None:
    """The (not yet started) driver thread for `cfg`, or None when this build cannot drive it."""
    if cfg.type == "serial":
        return SerialScanner(
            cfg.name, cfg.port, sink, stop, baudrate=cfg.baudrate, max_line=cfg.max_line
        )
    log.error("scanner %s: type %r is not supported by this build; skipped", cfg.name, cfg.type)
    return None
