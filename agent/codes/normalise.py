"""One normalisation for every input path: scanners, `tracescan check` and the local API.

Scanners and keyboard wedges deliver the same code in many shapes: with or without an AIM
symbology identifier (`]C1`, `]d2`, ...), with the GS1 separator as a real 0x1D byte or as a
textual stand-in, with trailing CR/LF. Everything is reduced to one canonical text in which
the group separator is 0x1D, and the symbology is kept as metadata.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from agent.codes.model import CodeError

GS: Final = "\x1d"

#: The longest input worth looking at. The longest legitimate payload (an MA code with every
#: optional part, or a GS1 string with several AIs) stays well under this.
MAX_INPUT: Final = 512

#: Textual stand-ins for GS that keyboard wedges and decoders produce: zxing-cpp's `<GS>`,
#: `{GS}` and `[GS]` renderings, the caret notation of Ctrl+] (`^]`), a literal `\x1d` escape
#: (typed into `tracescan check`), and U+241D, the visible "symbol for group separator".
DEFAULT_GS_STANDINS: Final[tuple[str, ...]] = (
    "<GS>",
    "{GS}",
    "[GS]",
    "^]",
    "\\x1d",
    "\\x1D",
    "\u241d",
)

_AIM: Final = re.compile(r"\][A-Za-z][0-9A-Za-z]")
#: ISO/IEC 15434 message envelope: `[)>` RS, a two-character format (06: ASC MH10 data
#: identifiers, as on IFA/PPN pharmacy packs; 05: GS1 AIs; DD: ...), GS-separated fields.
_ISO15434: Final = re.compile(r"\[\)>(?:\x1e|<RS>|\{RS\}|\\x1[eE]|\u241e)?([0-9A-Z]{2})?")
_CONTROL: Final = re.compile(r"[\x00-\x1c\x1e\x1f\x7f-\x9f]")
_PRINTABLE_ASCII: Final = re.compile(r"[\x20-\x7e\x1d]*")


@dataclass(frozen=True, slots=True)
class Normalised:
    """Canonical text of one scan plus the symbology identifier it arrived with, if any."""

    text: str
    symbology: str | None = None


def normalise(
    raw: str,
    *,
    gs_standins: tuple[str, ...] = DEFAULT_GS_STANDINS,
    gs_replacement: str | None = None,
) -> Normalised:
    """Reduce scanner text to canonical form or raise `CodeError`.

    >>> normalise("]C1010690123456789221ABC<GS>10LOT\\r\\n")
    Normalised(text='010690123456789221ABC\\x1d10LOT', symbology=']C1')
    """
    if len(raw) > MAX_INPUT * 4:
        # Refuse before doing any per-character work: bounded cost for garbage floods.
        raise CodeError("bad_length", f"input of {len(raw)} characters is far longer than any code")
    if raw.isascii() and raw.isdigit() and len(raw) <= MAX_INPUT:
        # The common case (a 20-digit trace code, an EAN) needs none of the steps below.
        return Normalised(text=raw)
    text = raw.strip(" \t\r\n")
    if not text:
        raise CodeError("empty", "nothing was read")
    symbology: str | None = None
    if _AIM.match(text):
        symbology = text[:3]
        # After an AIM identifier the scanner sends the symbol's data as it is: a blank at
        # its end is data (and no valid code), not padding to trim.
        text = raw.lstrip(" \t\r\n")[3:].rstrip("\r\n")
    envelope = _ISO15434.match(text)
    if envelope is not None:
        # Its control characters are the format's own structure, not noise: name the format.
        fmt = envelope.group(1) or "??"
        raise CodeError(
            "unsupported_format",
            f"ISO/IEC 15434 message (format {fmt}), not a trace code format accepted here",
            variant="iso15434",
            where=f"ISO/IEC 15434, format {fmt}",
        )
    for standin in gs_standins:
        if standin in text:
            text = text.replace(standin, GS)
    if gs_replacement and gs_replacement in text:
        text = text.replace(gs_replacement, GS)
    # A GS1 symbol opens with FNC1, which some scanners transmit as a leading GS; trailing GS
    # carry no data either, nor do blanks where no AIM identifier says the data is verbatim.
    text = text.strip(GS) if symbology else text.strip(" " + GS)
    if not text:
        raise CodeError("empty", "only a symbology identifier or separators were read")
    if len(text) > MAX_INPUT:
        raise CodeError(
            "bad_length", f"{len(text)} characters is longer than any code ({MAX_INPUT})"
        )
    if not _PRINTABLE_ASCII.fullmatch(text):
        bad = _CONTROL.search(text)
        what = (
            f"control byte 0x{ord(bad.group()):02x}"
            if bad
            else "characters outside printable ASCII"
        )
        raise CodeError("bad_charset", f"input contains {what}")
    return Normalised(text=text, symbology=symbology)
