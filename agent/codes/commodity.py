"""Commodity barcodes (EAN-13, EAN-8, UPC-A, a bare GTIN-14): never a trace code.

The 13-digit `69…` barcode (GS1 China) is printed on the same box as the trace code, and
scanning it instead is the error pharmacies report most (DOMAIN.md). It is recognised so the
worker is told exactly that, and always refused as `commodity_barcode`.
"""

from __future__ import annotations

from typing import Final, NoReturn

from agent.codes.gs1 import check_digit_ok
from agent.codes.model import CodeError
from agent.codes.normalise import Normalised

#: EAN-8, UPC-A, EAN-13 and a bare GTIN-14 (ITF-14 on outer cartons).
LENGTHS: Final = frozenset({8, 12, 13, 14})

#: AIM identifiers of the EAN/UPC family (`]E0` EAN-13/UPC-A, `]E4` EAN-8).
_EAN_SYMBOLOGIES: Final = ("]E0", "]E1", "]E2", "]E3", "]E4", "]I1")


def looks_like(n: Normalised) -> bool:
    """Digits of an EAN/UPC/GTIN length that either check or announce themselves as EAN/UPC.

    A digit run with a wrong check digit is only claimed when it cannot be something else:
    the symbology says EAN/UPC, or it is 13 digits starting 69.
    """
    text = n.text
    if len(text) not in LENGTHS or not (text.isascii() and text.isdigit()):
        return False
    return (
        check_digit_ok(text)
        or n.symbology in _EAN_SYMBOLOGIES
        or (len(text) == 13 and text.startswith("69"))
    )


def refuse(n: Normalised) -> NoReturn:
    """Raise the `CodeError` for a commodity barcode (wrong check digit or not).

    >>> refuse(Normalised("6901234567892"))
    Traceback (most recent call last):
    ...
    agent.codes.model.CodeError: 6901234567892 is a commodity barcode (GS1 China), not a trace code
    """
    text = n.text
    gtin = text.zfill(14)
    if not check_digit_ok(text):
        raise CodeError(
            "bad_check_digit",
            f"{text} has a wrong EAN/UPC check digit",
            kind="commodity",
            fields={"gtin": gtin},
        )
    china = len(text) == 13 and text.startswith("69")
    raise CodeError(
        "commodity_barcode",
        f"{text} is a commodity barcode{' (GS1 China)' if china else ''}, not a trace code",
        kind="commodity",
        fields={"gtin": gtin},
        variant="69" if china else None,
    )
