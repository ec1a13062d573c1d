"""Value objects shared by every code family."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["cn20", "gs1", "sscc", "ma", "commodity", "unknown"]
PackLevel = Literal["unit", "middle", "case", "pallet", "unknown"]
FieldValue = str | bool | int
#: Why recognition refuses an input: stable reason codes (SPEC `check`), never renamed.
RecognitionReason = Literal[
    "empty",
    "bad_charset",
    "bad_length",
    "bad_check_digit",
    "bad_date",
    "gs1_structure",
    "commodity_barcode",
    "unknown_format",
    "bad_value",
    "unsupported_format",
]


def pack_identity(kind: Kind, text: str, fields: Mapping[str, FieldValue]) -> str:
    """What identifies the physical pack, whichever way its code was spelled.

    A GS1 pack is its GTIN and serial: the same DataMatrix read as scanned, as HRI or as a
    GS1 Digital Link URI (the QR on newer packs) carries its elements in other orders, but is
    one pack for de-duplication and custody. Every other code is its normalised text.

    >>> pack_identity("gs1", "0106901234567892\x1d21SN1", {"gtin": "06901234567892", "serial": "SN1"})
    '010690123456789221SN1'
    """
    gtin, serial = fields.get("gtin"), fields.get("serial")
    if kind == "gs1" and isinstance(gtin, str) and isinstance(serial, str):
        return f"01{gtin}21{serial}"
    return text


@dataclass(frozen=True, slots=True)
class Code:
    """A recognised, structurally valid code.

    `text` is the normalised code (what the event carries); `fields` holds the parts SPEC.md
    names (`product_code`, `serial`, `gtin`, `batch`, `expiry`, `sscc`, ...).
    """

    text: str
    kind: Kind
    fields: dict[str, FieldValue] = field(default_factory=dict)
    level: PackLevel = "unknown"
    symbology: str | None = None


class CodeError(ValueError):
    """The input is not an acceptable code; `reason` is a stable SPEC reason code.

    `variant` optionally picks a more specific worker message for the same reason (e.g. the
    69… commodity barcode, or GS1 separators lost); the reason itself never changes with it.
    `where` names the part of the code at fault for the worker, language-neutral (e.g.
    `(17) USE BY or EXPIRY`); empty when the code as a whole is at fault.
    """

    def __init__(
        self,
        reason: RecognitionReason,
        detail: str,
        *,
        kind: Kind = "unknown",
        fields: dict[str, FieldValue] | None = None,
        variant: str | None = None,
        where: str = "",
    ) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.kind: Kind = kind
        self.fields: dict[str, FieldValue] = fields or {}
        self.variant = variant
        self.where = where
