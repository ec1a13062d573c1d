"""Decide which code family a normalised text belongs to, in the order DOMAIN.md requires.

1. Plain 20-digit numerics starting with 8 are Chinese trace codes, decided **before** any GS1
   attempt: a naive GS1 parser reads some `80…` codes as AI 8004/8020 element strings.
2. `MA.` codes.
3. GS1 only when the input says so (`gs1.looks_like`). A 20-digit numeric that does not start
   with 8 is GS1 when it is `00` + 18 digits (an SSCC, whose check digit is then verified) or
   `01` + a GTIN whose check digit holds + more; otherwise it is a 20-digit enterprise code,
   refused as `unknown_format`.
4. Commodity barcodes (EAN/UPC), always refused.
5. Near-miss digit runs starting with 8 (a partial or doubled trace-code read): `bad_length`.
"""

from __future__ import annotations

from agent.codes import cn20, commodity, gs1, ma
from agent.codes.model import Code, CodeError
from agent.codes.normalise import Normalised


def classify(n: Normalised) -> Code:
    """Return the recognised `Code` for normalised input or raise `CodeError`."""
    text = n.text
    digits = text.isascii() and text.isdigit()
    if digits and len(text) == cn20.LENGTH:
        if text[0] == "8" or not _complete_gs1_numeric(text):
            return cn20.TraceCode.parse(text).to_code(n.symbology)
        return gs1.parse(n)
    if ma.looks_like(text):
        return ma.IdCode.parse(text).to_code(n.symbology)
    if gs1.looks_like(n):
        return gs1.parse(n)
    if commodity.looks_like(n):
        commodity.refuse(n)
    if digits and text[0] == "8" and 15 <= len(text) <= 25:
        raise CodeError(
            "bad_length", f"{len(text)} digits: a trace code has exactly 20", kind="cn20"
        )
    raise CodeError("unknown_format", f"{text[:40]!r} is not a known trace code format")


def _complete_gs1_numeric(text: str) -> bool:
    """`00` + 18 digits (the exact SSCC shape), or `01` + a GTIN with a right check digit."""
    if text.startswith("00"):
        return True
    return text.startswith("01") and gs1.check_digit_ok(text[2:16])
