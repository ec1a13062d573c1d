"""`tracescan sheet`: every printed command code scans, and the labels are really drawn."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import zxingcpp
from PIL import Image, ImageFont
from pyzbar import pyzbar

from agent.cli.sheet import FONT_FILES, missing_glyphs
from agent.rules.commands import parse, sheet_entries
from tests.cli.conftest import one_line_message, tracescan

DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


def decoded(png: Path) -> list[str]:
    """Every Code 128 zxing-cpp reads on the page, at 1x, as printed."""
    grey = np.asarray(Image.open(png).convert("L"))
    return [
        r.text
        for r in zxingcpp.read_barcodes(
            grey, formats=zxingcpp.BarcodeFormats([zxingcpp.BarcodeFormat.Code128])
        )
    ]


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_code_on_the_sheet_decodes_at_1x(tmp_path: Path, lang: str) -> None:
    out = tmp_path / f"sheet-{lang}.png"
    r = tracescan("sheet", "--lang", lang, "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"{out}: 12 command barcodes at 300 dpi; labels in /")
    expected = [cmd.text for cmd, _ in sheet_entries(lang)]
    assert sorted(decoded(out)) == sorted(expected)
    zbar = pyzbar.decode(Image.open(out).convert("L"), symbols=[pyzbar.ZBarSymbol.CODE128])
    assert sorted(bytes(d.data).decode() for d in zbar) == sorted(expected)  # and so does zbar
    assert "TSC:ACK" in expected  # what releases a stopped line
    assert [parse(text).text for text in expected] == expected  # and each one is a command
    with Image.open(out) as page:
        assert page.size == (2480, 3508)  # A4
        assert page.info["dpi"] == pytest.approx((300, 300), abs=0.01)


def test_the_zh_labels_are_drawn_with_real_glyphs(tmp_path: Path) -> None:
    out = tmp_path / "sheet.png"
    r = tracescan("sheet", "--out", str(out))
    assert r.returncode == 0, r.stderr
    font_path = Path(re.sub(r".*labels in ", "", r.stdout.strip()))
    labels = [label for _, label in sheet_entries("zh")]
    assert any("\u4e00" <= ch <= "\u9fff" for ch in "".join(labels))
    font = ImageFont.truetype(str(font_path), 52)
    assert missing_glyphs(font, labels) == ""  # no label character is the .notdef box
    # And they are on the page: the label column is not blank on any row.
    grey = np.asarray(Image.open(out).convert("L"))
    label_column = grey[270:3300, 1600:2400]
    assert (label_column < 128).any(axis=1).sum() > 12 * 30


def test_a_font_without_the_glyphs_fails_loudly(tmp_path: Path) -> None:
    out = tmp_path / "sheet.png"
    r = tracescan("sheet", "--font", str(DEJAVU), "--out", str(out))
    assert r.returncode == 69
    one_line_message(r, "cannot draw the labels", "no glyphs for", "fonts-wqy-microhei")
    assert not out.exists()
    assert missing_glyphs(ImageFont.truetype(str(DEJAVU), 52), ["发药"]) == "发药"


def test_the_bootstrap_installs_the_font_the_sheet_looks_for() -> None:
    script = (Path(__file__).resolve().parents[2] / "scripts" / "ensure-system-deps").read_text()
    assert "fonts-wqy-microhei" in script
    assert str(FONT_FILES[0]) in script


def test_pdf_carries_300_dpi(tmp_path: Path) -> None:
    out = tmp_path / "sheet.pdf"
    r = tracescan("sheet", "--out", str(out))
    assert r.returncode == 0, r.stderr
    data = out.read_bytes()
    assert data.startswith(b"%PDF")
    # 2480 x 3508 pixels at 300 dpi: an A4 page of 595.2 x 841.92 points.
    assert re.search(rb"/MediaBox \[ ?0 0 595\.2\d* 841\.9\d* ?\]", data), data[:2000]


@pytest.mark.parametrize(
    ("out", "message"),
    [
        ("/nonexistent/x.png", "folder /nonexistent does not exist"),
        ("sheet.gif", "must end in .png or .pdf"),
    ],
)
def test_a_wrong_out_is_a_usage_error_not_a_traceback(out: str, message: str) -> None:
    r = tracescan("sheet", "--out", out)
    assert r.returncode == 2
    one_line_message(r, "--out", message)
