"""Packaging-level master data: which product code or GTIN is a unit, middle pack or case.

The level of a 20-digit trace code is bound to its 7-digit prefix and cannot be computed from
the digits (DOMAIN.md); it comes from this catalog. CSV header: `code,level,ratio,name`, with
an optional `parts` column: how many times a split-dispensed (拆零) unit code may be dispensed.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from agent.codes.model import Code, PackLevel

LEVELS: Final[tuple[PackLevel, ...]] = ("unit", "middle", "case")
#: Units a pack may contain, and parts a split-dispensed unit may be dispensed in, at most: a
#: catalog cannot switch the 回流 check off by allowing a unit a million dispensings.
MAX_RATIO: Final = 100_000
MAX_PARTS: Final = 100
_CODE: Final = re.compile(r"[0-9]{7}|[0-9]{14}")
_COUNT: Final = re.compile(r"[0-9]{1,9}")


class CatalogError(ValueError):
    """The catalog file is unreadable or has a bad row (the message names file and line)."""


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    """One product code (cn20 prefix or GTIN-14) at one packaging level."""

    code: str
    level: PackLevel
    ratio: int
    name: str
    parts: int = 1  # split-pack (拆零): times one unit code may be dispensed (optional column)


class Catalog:
    """Lookup from a code's product part to its catalog entry."""

    def __init__(self, entries: dict[str, CatalogEntry] | None = None) -> None:
        self.entries: dict[str, CatalogEntry] = entries or {}

    def __len__(self) -> int:
        return len(self.entries)

    def lookup(self, code: Code) -> CatalogEntry | None:
        """The entry for a recognised code, by cn20 product code or GTIN-14."""
        return self.entry_for(code.kind, code.fields)

    def entry_for(self, kind: str, fields: Mapping[str, object]) -> CatalogEntry | None:
        """The entry for a code of `kind` with these fields (cn20 prefix or GTIN-14)."""
        key = fields.get("product_code") if kind == "cn20" else fields.get("gtin")
        return self.entries.get(key) if isinstance(key, str) else None

    def level_of(self, code: Code) -> PackLevel:
        """Packaging level: SSCC is always a pallet; otherwise the catalog's word or unknown."""
        if code.kind == "sscc":
            return "pallet"
        entry = self.lookup(code)
        return entry.level if entry else "unknown"


def parse_catalog_csv(text: str, where: str) -> Catalog:
    """A catalog from CSV text (header `code,level,ratio,name[,parts]`), or `CatalogError`
    naming `where` and the first bad line."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    missing = {"code", "level", "ratio"} - set(reader.fieldnames or ())
    if missing:
        raise CatalogError(f"{where}: header lacks {', '.join(sorted(missing))}")
    entries: dict[str, CatalogEntry] = {}
    for row in reader:
        entry = entry_from_row(row, f"{where}:{reader.line_num}")
        entries[entry.code] = entry
    return Catalog(entries)


def entry_from_row(row: dict[str, str | None], where: str) -> CatalogEntry:
    """One catalog row (CSV or JSON shaped) as an entry, or `CatalogError` naming `where`."""
    code = (row.get("code") or "").strip()
    level = (row.get("level") or "").strip()
    ratio_text = (row.get("ratio") or "1").strip()
    if not (_CODE.fullmatch(code)):
        raise CatalogError(
            f"{where}: code {code!r} must be a 7-digit trace-code prefix or a GTIN-14"
        )
    if level not in LEVELS:
        raise CatalogError(f"{where}: level {level!r} must be one of {', '.join(LEVELS)}")
    if not _COUNT.fullmatch(ratio_text) or not 1 <= int(ratio_text) <= MAX_RATIO:
        raise CatalogError(f"{where}: ratio {ratio_text!r} must be a whole number 1..{MAX_RATIO}")
    lvl: PackLevel = "unit" if level == "unit" else "middle" if level == "middle" else "case"
    parts_text = (row.get("parts") or "1").strip()
    if not _COUNT.fullmatch(parts_text) or not 1 <= int(parts_text) <= MAX_PARTS:
        raise CatalogError(f"{where}: parts {parts_text!r} must be a whole number 1..{MAX_PARTS}")
    return CatalogEntry(
        code=code,
        level=lvl,
        ratio=int(ratio_text),
        name=(row.get("name") or "").strip(),
        parts=int(parts_text),
    )
