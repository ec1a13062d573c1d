"""`[[scanner]]` tables → each driver's own options: checked all at once while the config loads,
then wired into the driver threads."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from evdev import ecodes as e

from agent.config import ConfigError, ScannerConfig, parse
from agent.config.scanners import driver_options
from drivers import open_scanner
from drivers.camera import CameraScanner, PyzbarDecoder
from drivers.hid import HidScanner
from drivers.keymap import LAYOUTS
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
    s = open_scanner(driver_options(serial_cfg), print, stop)
    assert isinstance(s, SerialScanner)
    assert isinstance(make_framer(s.options.terminator, s.options.suffix), SuffixFramer)
    assert s.options.suffix == b"\x03"
    assert (s.source, s.device) == ("serial0", "usb-Zebra-if00")
    h = open_scanner(driver_options(hid_cfg), print, stop)
    assert isinstance(h, HidScanner)
    assert h.options.keymap.name == "de"
    assert h.options.keystrokes.end_keys == frozenset({e.KEY_ENTER})
    assert h.options.keystrokes.gs_keys == frozenset({e.KEY_F8})
    assert h.options.keystrokes.inter_key_timeout == pytest.approx(0.08)
    assert h.options.grab is False
    c = open_scanner(driver_options(cam_cfg), print, stop)
    assert isinstance(c, CameraScanner)
    assert isinstance(c.pipeline.decoder, PyzbarDecoder)
    assert c.pipeline.options.roi == (10, 20, 640, 360)
    assert c.pipeline.options.downscale == 0.5
    assert c.pipeline.holdoff.seconds == 2.0
    assert c.options.fps == 15


def test_a_learnt_keymap_file_reaches_the_hid_driver(tmp_path: Path) -> None:
    learnt = LAYOUTS["fr"]
    keymap_file = tmp_path / "keymap.json"
    keymap_file.write_text(learnt.to_json(), encoding="utf-8")
    (cfg,) = scanners(
        tmp_path, {"type": "hid", "port": "x", "layout": "calibrated", "keymap_file": "keymap.json"}
    )
    h = open_scanner(driver_options(cfg), print, threading.Event())
    assert isinstance(h, HidScanner)
    assert h.options.keymap.table == learnt.table


def test_bad_driver_keys_are_all_reported(tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text("{}", encoding="utf-8")
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
            {"type": "hid", "port": "z", "end_keys": ["entr", "tab"], "gs_keys": ["f88"]},
            {"type": "serial", "port": "/dev/ttyUSB0", "suffix": "\u4e00"},
            {"type": "hid", "port": "w", "layout": "calibrated", "keymap_file": "broken.json"},
            {"type": "hid", "port": "v", "end_keys": [], "inter_key_timeout_ms": 0},
        )
    problems = info.value.problems
    text = "\n".join(problems)
    for key in (
        "scanner[0].layout",
        "scanner[0].grab",
        "scanner[0].end_keys",
        "scanner[1].decoder",
        "scanner[1].roi",
        "scanner[1].formats",
        "scanner[2].terminator",
        "scanner[3].keymap_file",
        "scanner[4].end_keys: 'entr' is not a key name",
        "scanner[4].gs_keys: 'f88' is not a key name",
        "scanner[5].suffix",
        "scanner[6].keymap_file: keymap file is not a tracescan keymap",
        "scanner[7].end_keys: empty while inter_key_timeout_ms = 0",
    ):
        assert key in text, key
    assert not any("'tab'" in p for p in problems)  # only the wrong name is reported
    assert sum("scanner[3]" in p for p in problems) == 1  # said once, by the schema


def test_a_mistyped_end_key_is_a_config_error_not_a_skipped_scanner(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"scanner\[0\]\.end_keys: 'nosuchkey'"):
        scanners(tmp_path, {"type": "hid", "port": "x", "end_keys": ["nosuchkey"]})


def test_a_serial_station_never_loads_opencv_or_evdev_devices(tmp_path: Path) -> None:
    probe = f"""
import sys, threading
from pathlib import Path
from agent.config import parse
from agent.config.scanners import driver_options
from drivers import open_scanner
cfg = parse({{"device": {DEVICE!r}, "scanner": [{{"type": "serial", "port": "/dev/ttyACM0"}}]}},
            Path({str(tmp_path)!r}))
thread = open_scanner(driver_options(cfg.scanners[0]), print, threading.Event())
print(type(thread).__name__, sorted(m for m in ("cv2", "zxingcpp", "drivers.camera", "drivers.hid") if m in sys.modules))
"""
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert out.split(maxsplit=1) == ["SerialScanner", "[]\n"]
