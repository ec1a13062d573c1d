"""`tracescan sheet`: the printed command-barcode sheet, and the barcode printer behind it.

Workers switch the operation, end a document, undo a scan and — above all — release a stopped
line (`TSC:ACK`) by scanning codes from this sheet, so every code on it must scan from an
ordinary office print:

- 300 dpi A4, each Code 128 module a whole number of pixels (4 px = 0.34 mm): a module width
  of 1.18 px (python-barcode's 0.2 mm at 150 dpi) rendered bars of uneven width that neither
  zxing-cpp nor zbar could read;
- 10 modules of quiet zone either side, bars 13.5 mm tall, rows far enough apart that an aiming
  line crosses one code only;
- the resolution written into the PNG (pHYs) and the PDF, so a print at 100 % keeps the size;
- labels drawn in a font that has their glyphs (a CJK font for zh, from the Debian package
  `fonts-wqy-microhei` that scripts/ensure-system-deps installs); when no installed font can
  draw them the command fails and says what to install, instead of printing empty boxes.

python-barcode supplies the module pattern, Pillow draws it; `draw_code128` and `save_pages`
also print the calibration barcode (`tracescan calibrate barcode`).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final

from agent.cli.station import (
    EX_CANTCREAT,
    EX_UNAVAILABLE,
    EX_USAGE,
    CommandError,
    add_command,
    output_path,
)
from agent.rules.commands import sheet_entries

if TYPE_CHECKING:
    from PIL import Image, ImageDraw, ImageFont

DPI: Final = 300
A4: Final = (2480, 3508)  # portrait, pixels at 300 dpi (210 x 297 mm)
MARGIN: Final = 150  # 12.7 mm
MODULE_PX: Final = 4  # 0.34 mm: a whole number of pixels per module, read by every scanner
QUIET_MODULES: Final = 10  # Code 128's quiet zone, each side
BAR_HEIGHT: Final = 160  # 13.5 mm
ROW_HEIGHT: Final = 250  # 21 mm: bars, the code's text and a gap before the next row

#: Fonts from Debian packages, in order of preference; the first that has every glyph wins.
FONT_FILES: Final = (
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),  # fonts-wqy-microhei
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),  # fonts-noto-cjk
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),  # fonts-wqy-zenhei
    Path("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf"),  # fonts-droid-fallback
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),  # fonts-dejavu-core: no CJK
)
FONT_PACKAGE: Final = "fonts-wqy-microhei"
#: A code point no font has a glyph for: it renders as the font's .notdef (the empty box).
_NO_GLYPH: Final = "\U0010fffd"

TITLES: Final = {
    "zh": "tracescan 命令条码：扫描切换作业、结束单据、撤销上一次扫描或确认警告",
    "en": "tracescan command barcodes: scan one to switch operation, end, undo or acknowledge",
}
FOOTERS: Final = {
    "zh": "按 100% 比例打印（不要“适应页面”）。300 dpi",
    "en": "Print at 100 % (not 'fit to page'). 300 dpi",
}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `tracescan sheet`."""
    p = add_command(
        sub,
        "sheet",
        summary="print the command-barcode sheet (operations, end, undo, acknowledge)",
        description=(
            "One Code 128 per operation (TSC:OP:...), end document (TSC:END), undo the last\n"
            "scan (TSC:UNDO) and acknowledge an alert (TSC:ACK), with labels in the chosen\n"
            "language. A4 at 300 dpi, PNG or PDF by the file name; print at 100 %. The labels\n"
            f"need a font with their glyphs: for zh a CJK font (apt-get install {FONT_PACKAGE})\n"
            "or --font FILE."
        ),
        exits=[
            (0, "sheet written"),
            (EX_USAGE, "usage error (e.g. --out not .png/.pdf, or its folder is missing)"),
            (EX_UNAVAILABLE, f"no installed font can draw the labels (install {FONT_PACKAGE})"),
            (EX_CANTCREAT, "the file cannot be written"),
        ],
        examples=[
            "tracescan sheet --out commands.pdf",
            "tracescan sheet --lang en --out commands-en.png",
        ],
    )
    p.add_argument(
        "--out",
        required=True,
        type=output_path(".png", ".pdf"),
        metavar="FILE",
        help="the PNG or PDF to write",
    )
    p.add_argument(
        "--lang", default="zh", choices=("zh", "en"), help="language of the labels (default: zh)"
    )
    p.add_argument(
        "--font", type=Path, metavar="FILE", help="a TrueType/OpenType font for the labels"
    )
    p.set_defaults(func=sheet)


def sheet(args: argparse.Namespace) -> int:
    """Render the sheet; say where it went and which font drew the labels."""
    count, font = render_sheet(args.out, args.lang, args.font)
    print(f"{args.out}: {count} command barcodes at {DPI} dpi; labels in {font}")
    return 0


def code128_modules(text: str) -> str:
    """The Code 128 module pattern of `text` ('1' = bar), start, check and stop included."""
    import barcode  # noqa: PLC0415 - only printing needs python-barcode

    return "".join(barcode.get("code128", text).build())


def draw_code128(
    draw: ImageDraw.ImageDraw, text: str, x: int, y: int, *, module: int, height: int
) -> int:
    """Draw `text` as Code 128 with its quiet zones from (x, y); returns the width drawn."""
    modules = code128_modules(text)
    left = x + QUIET_MODULES * module
    start = None
    for i, bit in enumerate(modules + "0"):
        if bit == "1" and start is None:
            start = i
        elif bit == "0" and start is not None:
            draw.rectangle(
                (left + start * module, y, left + i * module - 1, y + height - 1), fill=0
            )
            start = None
    return (len(modules) + 2 * QUIET_MODULES) * module


def missing_glyphs(font: ImageFont.FreeTypeFont, texts: Iterable[str]) -> str:
    """The characters of `texts` that `font` would draw as its .notdef box."""
    from PIL import Image, ImageDraw  # noqa: PLC0415 - only printing needs Pillow

    def glyph(ch: str) -> bytes:
        size = int(font.size) * 2
        canvas = Image.new("L", (size, size), 0)
        ImageDraw.Draw(canvas).text((size // 4, size // 4), ch, fill=255, font=font)
        return canvas.tobytes()

    box = glyph(_NO_GLYPH)
    chars = sorted({ch for text in texts for ch in text if not ch.isspace()})
    return "".join(ch for ch in chars if glyph(ch) == box)


def find_font(texts: Sequence[str], size: int, font_file: Path | None = None) -> Path:
    """The first font (`font_file`, else `FONT_FILES`) that can draw every character."""
    from PIL import ImageFont  # noqa: PLC0415

    candidates = [font_file] if font_file is not None else [p for p in FONT_FILES if p.is_file()]
    lacking = ""
    for path in candidates:
        try:
            font = ImageFont.truetype(str(path), size)
        except OSError as exc:
            raise CommandError(
                f"--font {path}: not a font Pillow can read ({exc})", EX_USAGE
            ) from exc
        lacking = missing_glyphs(font, texts)
        if not lacking:
            return path
    tried = ", ".join(str(p) for p in candidates) or "none of " + ", ".join(map(str, FONT_FILES))
    why = f"no glyphs for {lacking!r}" if lacking else "no font found"
    raise CommandError(
        f"cannot draw the labels: {why} in {tried}; install a CJK font "
        f"(apt-get install {FONT_PACKAGE}) or give --font FILE",
        EX_UNAVAILABLE,
    )


def save_pages(pages: Sequence[Image.Image], out: Path) -> None:
    """Write pages as one PDF (a page each) or one PNG (stacked), with their resolution."""
    from PIL import Image  # noqa: PLC0415

    try:
        if out.suffix.lower() == ".pdf":
            pages[0].save(
                out, "PDF", resolution=float(DPI), save_all=True, append_images=list(pages[1:])
            )
            return
        merged = pages[0]
        if len(pages) > 1:
            merged = Image.new("L", (pages[0].width, sum(p.height for p in pages)), 255)
            top = 0
            for page in pages:
                merged.paste(page, (0, top))
                top += page.height
        merged.save(out, "PNG", dpi=(DPI, DPI))
    except OSError as exc:
        raise CommandError(f"cannot write {out} ({exc.strerror or exc})", EX_CANTCREAT) from exc


def render_sheet(out: Path, lang: str = "zh", font_file: Path | None = None) -> tuple[int, Path]:
    """Write the command sheet as PNG or PDF (by suffix); the number of codes and the font."""
    from PIL import Image, ImageDraw, ImageFont  # noqa: PLC0415

    entries = sheet_entries(lang)
    texts = [TITLES[lang], FOOTERS[lang], *(label for _, label in entries)]
    texts += [cmd.text for cmd, _ in entries]
    font_path = find_font(texts, 52, font_file)
    label_font = ImageFont.truetype(str(font_path), 52)
    small = ImageFont.truetype(str(font_path), 30)
    title_font = ImageFont.truetype(str(font_path), 40)
    widest = max(len(code128_modules(cmd.text)) for cmd, _ in entries)
    label_x = MARGIN + (widest + 2 * QUIET_MODULES) * MODULE_PX + 60
    first_row = MARGIN + 120
    per_page = (A4[1] - first_row - MARGIN - 60) // ROW_HEIGHT
    pages: list[Image.Image] = []
    for start in range(0, len(entries), per_page):
        page = Image.new("L", A4, 255)
        draw = ImageDraw.Draw(page)
        draw.text((MARGIN, MARGIN), TITLES[lang], fill=0, font=title_font)
        for i, (cmd, label) in enumerate(entries[start : start + per_page]):
            y = first_row + i * ROW_HEIGHT
            draw_code128(draw, cmd.text, MARGIN, y, module=MODULE_PX, height=BAR_HEIGHT)
            draw.text(
                (MARGIN + QUIET_MODULES * MODULE_PX, y + BAR_HEIGHT + 8),
                cmd.text,
                fill=0,
                font=small,
            )
            draw.text((label_x, y + (BAR_HEIGHT - 52) // 2), label, fill=0, font=label_font)
        draw.text((MARGIN, A4[1] - MARGIN), FOOTERS[lang], fill=0, font=small)
        pages.append(page)
    save_pages(pages, out)
    return len(entries), font_path
