"""Build the driver thread for one `[[scanner]]` table."""

from __future__ import annotations

import logging
import threading

from agent.config import ScannerConfig
from drivers.scan import ScanSink

log = logging.getLogger(__name__)


def open_scanner(
    cfg: ScannerConfig, sink: ScanSink, stop: threading.Event
) -> threading.Thread | None:
    """The (not yet started) driver thread for `cfg`, or None when it cannot be driven.

    Drivers are imported only when configured, so a station with a serial scanner does not load
    OpenCV, and a driver that cannot be set up is logged and skipped, never fatal.
    """
    try:
        if cfg.type == "serial":
            return _serial(cfg, sink, stop)
        if cfg.type == "hid":
            return _hid(cfg, sink, stop)
        if cfg.type == "camera":
            return _camera(cfg, sink, stop)
    except (ValueError, OSError, ImportError) as exc:
        log.error("scanner %s: cannot be set up (%s); skipped", cfg.name, exc)
        return None
    log.error("scanner %s: type %r is not supported by this build; skipped", cfg.name, cfg.type)
    return None


def _serial(cfg: ScannerConfig, sink: ScanSink, stop: threading.Event) -> threading.Thread:
    from drivers.serial import SerialScanner  # noqa: PLC0415 - load drivers on demand

    terminator = cfg.terminator if cfg.terminator in ("any", "cr", "lf", "crlf") else "any"
    return SerialScanner(
        cfg.name,
        cfg.port,
        sink,
        stop,
        baudrate=cfg.baudrate,
        max_line=cfg.max_line,
        terminator=terminator,  # type: ignore[arg-type]  # checked just above
        suffix=cfg.suffix.encode("latin-1"),
    )


def _hid(cfg: ScannerConfig, sink: ScanSink, stop: threading.Event) -> threading.Thread:
    from drivers.hid import HidScanner, key_code  # noqa: PLC0415 - load drivers on demand
    from drivers.keymap import KeymapError, layout  # noqa: PLC0415
    from drivers.keystrokes import KeystrokeOptions  # noqa: PLC0415

    try:
        keymap = layout(cfg.layout, cfg.keymap_file)
    except KeymapError as exc:
        raise ValueError(str(exc)) from exc
    options = KeystrokeOptions(
        end_keys=frozenset(key_code(k) for k in cfg.end_keys),
        inter_key_timeout=cfg.inter_key_timeout_ms / 1000,
        gs_keys=frozenset(key_code(k) for k in cfg.gs_keys),
    )
    return HidScanner(cfg.name, cfg.port, sink, stop, keymap=keymap, options=options, grab=cfg.grab)


def _camera(cfg: ScannerConfig, sink: ScanSink, stop: threading.Event) -> threading.Thread:
    from drivers.camera import (  # noqa: PLC0415 - OpenCV is heavy: only when configured
        CameraScanner,
        FrameOptions,
        FramePipeline,
        make_decoder,
    )

    decoder = make_decoder("pyzbar" if cfg.decoder == "pyzbar" else "zxing", cfg.formats)
    pipeline = FramePipeline(
        decoder,
        FrameOptions(roi=cfg.roi, downscale=cfg.downscale),
        holdoff=cfg.holdoff_ms / 1000,
    )
    return CameraScanner(cfg.name, cfg.port, sink, stop, pipeline=pipeline, fps=cfg.fps)
