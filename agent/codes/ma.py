"""MA / IDcode (ISO/IEC 15459 issuing agency "MA"), as used on some Chinese drug packs.

`MA.156.M0.<registrant>.<product>` is the product part; dot-separated qualifiers follow, each a
letter and a value: `.S` serial, `.L` batch, `.M` production date, `.D` sterilisation batch,
`.V`/`.E` expiry dates (DOMAIN.md). There is no public check-character algorithm, so nothing
is verified beyond structure and dates.

Choices where nothing public fixes the rule (kept strict rather than guessed):
- dates are `YYMMDD` (20YY) or `YYYYMMDD` and must be real calendar days (no GS1-style day 00);
- `.E` is the expiry when present, else `.V`;
- a qualifier given twice, an empty part or a character outside `[0-9A-Za-z]` is refused;
- without `.S` the code names a product, not a pack: refused like a GS1 string without `(21)`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final

from agent.codes.model import Code, CodeError, FieldValue

PREFIX: Final = "MA."

_DATE_QUALIFIERS: Final = ("M", "E", "V")


def looks_like(text: str) -> bool:
    """Every MA code starts with the issuing agency code `MA.`."""
    return text.startswith(PREFIX)


@dataclass(frozen=True, slots=True)
class IdCode:
    """A structurally valid MA code: product part plus its qualifiers by letter."""

    text: str
    product: str
    qualifiers: dict[str, str]

    @classmethod
    def parse(cls, text: str) -> IdCode:
        """Validate `text` as an MA code or raise `CodeError`.

        >>> IdCode.parse("MA.156.M0.100761.21234561.Sx00008.L20220117.E220130").qualifiers["S"]
        'x00008'
        """
        parts = text.split(".")
        country = parts[1] if len(parts) > 1 else ""
        if len(parts) < 5 or not (country.isascii() and country.isdigit()) or len(country) != 3:
            raise CodeError(
                "unknown_format",
                f"{text[:40]!r}: an MA code starts MA.<3-digit country>.<type>.<registrant>.<product>",
                kind="ma",
            )
        for part in parts:
            if not (part.isascii() and part.isalnum()):
                raise CodeError(
                    "bad_charset" if part else "unknown_format",
                    f"{text[:40]!r}: part {part!r} must be letters and digits",
                    kind="ma",
                )
        qualifiers: dict[str, str] = {}
        for part in parts[5:]:
            letter, value = part[0], part[1:]
            if not letter.isupper() or not value or letter in qualifiers:
                raise CodeError(
                    "unknown_format",
                    f"{text[:40]!r}: qualifier {part!r} is empty, unknown or repeated",
                    kind="ma",
                )
            qualifiers[letter] = value
        for letter in _DATE_QUALIFIERS:
            if letter in qualifiers:
                _date(qualifiers[letter], letter)
        return cls(text=text, product=".".join(parts[:5]), qualifiers=qualifiers)

    @property
    def expiry(self) -> dt.date | None:
        """The expiry date: `.E`, else `.V`, else none."""
        value = self.qualifiers.get("E") or self.qualifiers.get("V")
        return _date(value, "E") if value else None

    def to_code(self, symbology: str | None = None) -> Code:
        """The family-independent `Code`, or `CodeError` when there is no serial."""
        fields: dict[str, FieldValue] = {"product_code": self.product}
        if "L" in self.qualifiers:
            fields["batch"] = self.qualifiers["L"]
        expiry = self.expiry
        if expiry is not None:
            fields["expiry"] = expiry.isoformat()
        if "S" not in self.qualifiers:
            raise CodeError(
                "gs1_structure",
                f"MA code {self.text[:40]!r} has no serial (.S): it names a product, not a pack",
                kind="ma",
                fields=fields,
                variant="no_serial",
            )
        fields["serial"] = self.qualifiers["S"]
        return Code(text=self.text, kind="ma", fields=fields, symbology=symbology)


def _date(value: str, letter: str) -> dt.date:
    """A `YYMMDD` (20YY) or `YYYYMMDD` date, or `CodeError("bad_date")`."""
    if value.isascii() and value.isdigit() and len(value) in (6, 8):
        year = int(value[:-4]) + (2000 if len(value) == 6 else 0)
        try:
            return dt.date(year, int(value[-4:-2]), int(value[-2:]))
        except ValueError:
            pass
    raise CodeError("bad_date", f"MA .{letter}{value}: not a YYMMDD or YYYYMMDD date", kind="ma")
