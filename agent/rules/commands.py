"""Command barcodes: the worker switches operation, opens/closes a document, undoes the last
scan or acknowledges an alert by scanning a code from a printed sheet (`tracescan sheet`).

Command codes are Code 128 texts `TSC:<verb>[:<value>]`, which no trace code, GS1 string or
MA code can be confused with:

| text | effect |
|---|---|
| `TSC:OP:<operation>` | set this scanner's operation (e.g. `TSC:OP:receive`) |
| `TSC:DOC:<id>` | open document `<id>` (bill / prescription / order) on this scanner |
| `TSC:END` | close the open document (publishes the reconciliation report for a manifest) |
| `TSC:UNDO` | void this scanner's last accepted scan (a signed void event; nothing is deleted) |
| `TSC:ACK` | acknowledge the alert that stopped this scanner |
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from agent.rules.operations import OPERATIONS

PREFIX: Final = "TSC:"
Verb = Literal["op", "doc", "end", "undo", "ack"]
_DOC_ID: Final = re.compile(r"[\x21-\x7e]{1,64}")

#: Operation names on the sheet (zh, en).
OPERATION_LABELS: Final[dict[str, tuple[str, str]]] = {
    "receive": ("入库验收", "Receive"),
    "dispatch": ("出库", "Dispatch"),
    "dispense": ("发药", "Dispense"),
    "sale": ("零售", "Retail sale"),
    "return_to_supplier": ("退货给供应商", "Return to supplier"),
    "customer_return": ("销售退回", "Customer return"),
    "destroy": ("销毁", "Destroy"),
    "recall": ("召回", "Recall"),
    "stock_count": ("盘点", "Stock count"),
}


class CommandError(ValueError):
    """A `TSC:` code that is not a valid command (refused like any bad scan)."""


@dataclass(frozen=True, slots=True)
class Command:
    """A parsed command barcode."""

    verb: Verb
    value: str | None = None

    @property
    def text(self) -> str:
        """The barcode text for this command."""
        return f"{PREFIX}{self.verb.upper()}" + (f":{self.value}" if self.value else "")


def is_command(text: str) -> bool:
    """True for anything in the command namespace (valid or not)."""
    return text.startswith(PREFIX)


def parse(text: str) -> Command:
    """Parse a `TSC:` text, raising `CommandError` with what is wrong.

    >>> parse("TSC:OP:receive")
    Command(verb='op', value='receive')
    """
    body = text.strip()[len(PREFIX) :]
    verb, _, value = body.partition(":")
    verb = verb.upper()
    if verb == "OP":
        if value not in OPERATIONS:
            raise CommandError(f"unknown operation {value!r}")
        return Command("op", value)
    if verb == "DOC":
        if not _DOC_ID.fullmatch(value):
            raise CommandError("a document id is 1–64 printable characters")
        return Command("doc", value)
    if verb in ("END", "UNDO", "ACK") and not value:
        return Command("end" if verb == "END" else "undo" if verb == "UNDO" else "ack")
    raise CommandError(f"unknown command {body[:20]!r}")


def sheet_entries(lang: str = "zh") -> list[tuple[Command, str]]:
    """Every command on the printed sheet with its label."""
    idx = 1 if lang == "en" else 0
    # The barcode's own human-readable line already shows the operation's name.
    entries = [(Command("op", op), OPERATION_LABELS[op][idx]) for op in OPERATIONS]
    entries += [
        (Command("end"), "结束单据" if idx == 0 else "End document"),
        (Command("undo"), "撤销上一次扫描" if idx == 0 else "Undo last scan"),
        (Command("ack"), "确认警告" if idx == 0 else "Acknowledge alert"),
    ]
    return entries


def _font(size: int) -> object:
    from PIL import ImageFont  # noqa: PLC0415 - only the sheet needs Pillow

    for path in (
        "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
        "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
        "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    ):
        if Path(path).exists():
            return ImageFont.truetype(path, size)
    return ImageFont.load_default(size)


def render_sheet(out: Path, lang: str = "zh") -> int:
    """Write the command sheet as PNG or PDF (by suffix); returns the number of codes."""
    import barcode  # noqa: PLC0415
    from barcode.writer import ImageWriter  # noqa: PLC0415
    from PIL import Image, ImageDraw  # noqa: PLC0415

    entries = sheet_entries(lang)
    width, row_h, margin = 1240, 200, 60  # A4 at 150 dpi is 1240 x 1754
    pages: list[Image.Image] = []
    per_page = (1754 - 2 * margin) // row_h
    font = _font(30)
    for start in range(0, len(entries), per_page):
        page = Image.new("RGB", (width, 1754), "white")
        draw = ImageDraw.Draw(page)
        for i, (cmd, label) in enumerate(entries[start : start + per_page]):
            code = barcode.get("code128", cmd.text, writer=ImageWriter())
            img = code.render(
                {"module_height": 12.0, "font_size": 8, "quiet_zone": 4.0, "dpi": 150}
            )
            y = margin + i * row_h
            page.paste(img, (margin, y))
            draw.text((margin + img.width + 40, y + 60), label, fill="black", font=font)  # type: ignore[arg-type]
        pages.append(page)
    if out.suffix.lower() == ".pdf":
        pages[0].save(out, "PDF", resolution=150.0, save_all=True, append_images=pages[1:])
    else:
        if len(pages) > 1:
            merged = Image.new("RGB", (width, 1754 * len(pages)), "white")
            for i, page in enumerate(pages):
                merged.paste(page, (0, 1754 * i))
            pages = [merged]
        pages[0].save(out)
    return len(entries)
