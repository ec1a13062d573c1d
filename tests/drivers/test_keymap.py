"""Layout tables and calibration: a scanner's layout learnt from one scan of a known barcode."""

from __future__ import annotations

from pathlib import Path

import pytest
from evdev import ecodes as e

from drivers.keymap import (
    CALIBRATION_TEXT,
    LAYOUTS,
    Keymap,
    KeymapError,
    Stroke,
    key_code,
    layout,
    learn_keymap,
)
from drivers.keystrokes import KeystrokeDecoder, decode_stream
from hardware_sim.hid_scanner import VirtualHidScanner

GS1 = "]d2010691234567890421ABC\x1d10LOT-1/2"


def calibration_strokes(keymap: Keymap) -> list[Stroke]:
    """What the driver records while the scanner reads the calibration barcode."""
    decoder = KeystrokeDecoder(Keymap("none", {}))
    for t in VirtualHidScanner(keymap).events(CALIBRATION_TEXT):
        decoder.feed(t.event, t.at)
    return decoder.last_strokes


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_calibration_learns_a_layout_that_reads_codes_like_the_builtin(name: str) -> None:
    learnt = learn_keymap(calibration_strokes(LAYOUTS[name]))
    events = VirtualHidScanner(LAYOUTS[name]).events(GS1) + VirtualHidScanner(LAYOUTS[name]).events(
        "a^b`c~1"
    )
    scans = decode_stream(((t.event, t.at) for t in events), learnt)
    assert scans == [GS1, "a^b`c~1"]


def test_learnt_keymap_round_trips_through_its_file(tmp_path: Path) -> None:
    learnt = learn_keymap(calibration_strokes(LAYOUTS["de"]))
    f = tmp_path / "keymap.json"
    f.write_text(learnt.to_json(), encoding="utf-8")
    again = layout("calibrated", f)
    assert again.table == learnt.table
    assert again.dead == learnt.dead


def test_calibration_refuses_a_scan_that_does_not_line_up() -> None:
    strokes = calibration_strokes(LAYOUTS["us"])
    with pytest.raises(KeymapError, match="key presses for"):
        learn_keymap(strokes[:-1])
    # Two different characters from the same key: not a clean read of the calibration code.
    clash = [Stroke(e.KEY_1), Stroke(e.KEY_1)]
    with pytest.raises(KeymapError, match="typed both"):
        learn_keymap(clash, expected="12")


def test_unknown_layout_and_missing_keymap_file_are_explained(tmp_path: Path) -> None:
    with pytest.raises(KeymapError, match="use one of us, uk, de, fr"):
        layout("xx")
    with pytest.raises(KeymapError, match="needs keymap_file"):
        layout("calibrated")
    with pytest.raises(KeymapError, match="cannot read"):
        layout("calibrated", tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{}", encoding="utf-8")
    with pytest.raises(KeymapError, match="not a tracescan keymap"):
        layout("calibrated", bad)


def test_key_names_in_config_resolve_to_key_codes() -> None:
    assert key_code("enter") == e.KEY_ENTER
    assert key_code("kp_enter") == e.KEY_KPENTER
    assert key_code("KEY_TAB") == e.KEY_TAB
    assert key_code("f8") == e.KEY_F8
    for wrong in ("nokey", "entr", "btn_left", "syn_report"):
        with pytest.raises(ValueError, match="not a key name"):
            key_code(wrong)
