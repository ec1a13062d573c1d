"""`[[scanner]]` keys for each driver: parsed, checked all at once, and wired into the driver."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from evdev import ecodes as e

from agent.config import ConfigError, ScannerConfig, parse
from drivers.camera import CameraScanner, PyzbarDecoder
from drivers.factory import open_scanner
from drivers.hid import HidScanner
from drivers.serial import SerialScanner, SuffixFramer, make_framer

DEVICE = {"id": "station-01", "site": "site-01", "data_dir": "data", "key_dir": "keys"}


def scanners(tmp_path: Path, *tables: dict[str, object]) -> tuple[ScannerConfig, ...]:
    return parse({"device": DEVICE, "scanner": list(tables)}, tmp_path).scanners


def test_driver_keys_reach_the_drivers(tmp_path: Path) -> None:
    serial_cfg, hid_cfg, cam_cfg = scanners(
        tmp_path,
        {"type": "serial", "port": "usb-Zebra-if00", "suffix": "\u0003"},
        {
            "type": "hid",
            "port": "0c2e:0b61",
            "layout": "de",
            "end_keys": ["enter"],
            "inter_key_timeout_ms": 80,
            "gs_keys": ["f8"],
            "grab": False,
        },
        {
            "type": "camera",
            "port": "0",
            "decoder": "pyzbar",
            "formats": ["code128", "qr"],
            "roi": [10, 20, 640, 360],
            "downscale": 0.5,
            "holdoff_ms": 2000,
            "fps": 15,
        },
    )
    stop = threading.Event()
    s = open_scanner(serial_cfg, print, stop)
    assert isinstance(s, SerialScanner)
    assert isinstance(make_framer(s.terminator, s.suffix), SuffixFramer)
    assert s.suffix == b"\x03"
    h = open_scanner(hid_cfg, print, stop)
    assert isinstance(h, HidScanner)
    assert h.keymap.name == "de"
    assert h.options.end_keys == frozenset({e.KEY_ENTER})
    assert h.options.gs_keys == frozenset({e.KEY_F8})
    assert h.options.inter_key_timeout == pytest.approx(0.08)
    assert h.grab is False
    c = open_scanner(cam_cfg, print, stop)
    assert isinstance(c, CameraScanner)
    assert isinstance(c.pipeline.decoder, PyzbarDecoder)
    assert c.pipeline.options.roi == (10, 20, 640, 360)
    assert c.pipeline.options.downscale == 0.5
    assert c.pipeline.holdoff.seconds == 2.0
    assert c.fps == 15


def test_bad_driver_keys_are_all_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        scanners(
            tmp_path,
            {"type": "hid", "port": "x", "layout": "dvorak", "grab": "yes", "end_keys": "enter"},
            {
                "type": "camera",
                "port": "0",
                "decoder": "zbar",
                "roi": [0, 0, 0],
                "formats": ["aztec"],
            },
            {"type": "serial", "port": "/dev/ttyACM0", "terminator": "etx"},
            {"type": "hid", "port": "y", "layout": "calibrated"},
        )
    text = "\n".join(info.value.problems)
    for key in (
        "scanner[0].layout",
        "scanner[0].grab",
        "scanner[0].end_keys",
        "scanner[1].decoder",
        "scanner[1].roi",
        "scanner[1].formats",
        "scanner[2].terminator",
        "scanner[3].keymap_file",
    ):
        assert key in text


def test_a_driver_that_cannot_be_set_up_is_skipped_not_fatal(tmp_path: Path) -> None:
    (cfg,) = scanners(tmp_path, {"type": "hid", "port": "x", "end_keys": ["nosuchkey"]})
    assert open_scanner(cfg, print, threading.Event()) is None
