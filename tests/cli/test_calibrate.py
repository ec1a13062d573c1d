"""`tracescan calibrate`: the printed calibration barcode scans back to the calibration text,
and `learn` on a device that is not there is a message and an exit status, not a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import zxingcpp
from PIL import Image

from drivers.keymap import CALIBRATION_TEXT
from tests.cli.conftest import one_line_message, tracescan


def test_the_printed_calibration_barcode_carries_the_calibration_text(tmp_path: Path) -> None:
    out = tmp_path / "calibration.png"
    r = tracescan("calibrate", "barcode", str(out))
    assert r.returncode == 0, r.stderr
    with Image.open(out) as page:
        assert page.size == (3508, 2480)  # A4 landscape
        assert page.info["dpi"] == pytest.approx((300, 300), abs=0.01)
        grey = np.asarray(page.convert("L"))
    found = zxingcpp.read_barcodes(
        grey, formats=zxingcpp.BarcodeFormats([zxingcpp.BarcodeFormat.Code128])
    )
    assert [s.text for s in found] == [CALIBRATION_TEXT]  # at 1x, as printed


def test_the_calibration_barcode_needs_neither_opencv_nor_hardware_sim(tmp_path: Path) -> None:
    probe = (
        "import sys; from agent.cli import main; "
        f"rc = main(['calibrate', 'barcode', {str(tmp_path / 'c.pdf')!r}]); "
        "print(rc, sorted(m for m in ('cv2', 'hardware_sim') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.splitlines()[-1] == "0 []"
    assert (tmp_path / "c.pdf").read_bytes().startswith(b"%PDF")


def test_learn_from_a_device_that_is_not_there(tmp_path: Path) -> None:
    r = tracescan("calibrate", "learn", str(tmp_path / "event99"), str(tmp_path / "keymap.json"))
    assert r.returncode == 66
    one_line_message(r, "event99 does not exist", "plug the scanner in")
    r = tracescan("calibrate", "learn", "usb-No_Such_Scanner-event-kbd", str(tmp_path / "k.json"))
    assert r.returncode == 66
    one_line_message(r, "no usb-No_Such_Scanner-event-kbd in /dev/input/by-id")
    assert not (tmp_path / "keymap.json").exists()


def test_learn_from_something_that_is_not_an_input_device(tmp_path: Path) -> None:
    not_input = tmp_path / "event0"
    not_input.write_bytes(b"")
    r = tracescan("calibrate", "learn", str(not_input), str(tmp_path / "keymap.json"))
    assert r.returncode == 66
    one_line_message(r, f"cannot read {not_input}", "not an input device")


def test_learn_into_a_folder_that_does_not_exist_is_a_usage_error(tmp_path: Path) -> None:
    r = tracescan("calibrate", "learn", "/dev/input/event0", str(tmp_path / "no" / "k.json"))
    assert r.returncode == 2
    one_line_message(r, "does not exist")


def test_the_old_entry_points_are_gone() -> None:
    hid = subprocess.run(
        [sys.executable, "-m", "drivers.hid", "calibrate", "/dev/input/event0", "k.json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert hid.stdout == ""  # no calibration started: the module has no command line
    scene = subprocess.run(
        [sys.executable, "-m", "hardware_sim.camera_scene", "calibration", "c.png"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert scene.returncode == 2
    assert "invalid choice: 'calibration'" in scene.stderr
