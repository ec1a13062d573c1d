"""Master data the guards work from: aggregation relations, the blocklist and manifests.

Each set comes from a file (CSV or JSON) or a retained MQTT message (JSON), carries a
`version`, and is applied whole or not at all: a parse error leaves the previous set in
force. Sets are persisted in the store (encrypted, like everything under `data_dir`), so the
guards keep working offline after a reboot.

JSON shapes (all with an integer `version`):
- catalog:   `{"version": 2, "entries": [{"code": "8123456", "level": "unit", "ratio": 1,
  "name": "...", "parts": 1}]}` (the catalog CSV's columns)
- relations: `{"version": 3, "relations": {"<parent code>": ["<child code>", ...]}}`
- blocklist: `{"version": 7, "entries": [{"type": "code|batch|product", "value": "...",
  "reason": "recall 2026-11 批号…"}]}`
- manifest:  `{"version": 1, "doc": "<bill id>", "supplier": "...", "codes": [...],
  "relations": {...}}` — the supplier's dispatch data for one document; `codes` may list
  cases, which are expanded through the manifest's (or the global) relations.
CSV: catalog as in SPEC (`code,level,ratio,name[,parts]`); relations `parent,child`; blocklist `type,value,reason`; manifest `doc,code`.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from agent.rules.catalog import Catalog, CatalogError, entry_from_row

MasterKind = Literal["catalog", "relations", "blocklist", "manifest"]
KINDS: Final[tuple[MasterKind, ...]] = ("catalog", "relations", "blocklist", "manifest")
BLOCK_TYPES: Final = ("code", "batch", "product")
_MAX_DEPTH: Final = 4  # pallet → case → middle → unit


class MasterDataError(ValueError):
    """A master-data document is malformed; the message says where."""


@dataclass(frozen=True, slots=True)
class Relations:
    """Parent → children packing relations (as the manufacturer uploaded them)."""

    version: int = 0
    children: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def expand(self, code: str, extra: Relations | None = None) -> tuple[str, ...] | None:
        """The unit codes inside `code` (recursively), or None when it has no known children.

        Uses the actual relation data, never a nominal ratio: mixed (拼箱) and partial (零箱)
        cases expand to exactly what was packed.
        """
        if code not in self.children and not (extra and code in extra.children):
            return None
        units: list[str] = []
        self._collect(code, extra, units, 0)
        return tuple(units)

    def _collect(self, code: str, extra: Relations | None, out: list[str], depth: int) -> None:
        kids = (extra.children.get(code) if extra else None) or self.children.get(code)
        if not kids or depth >= _MAX_DEPTH:
            out.append(code)
            return
        for kid in kids:
            self._collect(kid, extra, out, depth + 1)

    def is_parent(self, code: str) -> bool:
        """True when `code` is known to contain other codes."""
        return code in self.children


@dataclass(frozen=True, slots=True)
class CatalogSet:
    """A versioned packaging-level catalog."""

    version: int = 0
    catalog: Catalog = field(default_factory=Catalog)


def catalog_from_rows(rows: list[dict[str, str | None]], version: int, where: str) -> CatalogSet:
    """Build a catalog set from CSV-shaped rows, naming the bad row on error."""
    entries = {}
    for i, row in enumerate(rows):
        try:
            entry = entry_from_row(row, f"{where}: entries[{i}]")
        except CatalogError as exc:
            raise MasterDataError(str(exc)) from exc
        entries[entry.code] = entry
    return CatalogSet(version, Catalog(entries))


@dataclass(frozen=True, slots=True)
class BlockEntry:
    """One blocked code, batch or product, with the reason shown to the worker."""

    type: str
    value: str
    reason: str


#: Which field of a code each entry type is compared with.
_BLOCK_FIELDS: Final = (("batch", "batch"), ("product", "product_code"), ("product", "gtin"))


@dataclass(frozen=True, slots=True)
class Blocklist:
    """Recalled or otherwise blocked codes, batches and products."""

    version: int = 0
    entries: tuple[BlockEntry, ...] = ()
    # (type, value) -> (position, entry) of the first such entry: a scan costs a few lookups,
    # not a walk through a recall list of thousands.
    _first: dict[tuple[str, str], tuple[int, BlockEntry]] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        first: dict[tuple[str, str], tuple[int, BlockEntry]] = {}
        for i, entry in enumerate(self.entries):
            first.setdefault((entry.type, entry.value), (i, entry))
        object.__setattr__(self, "_first", first)

    def match(self, code: str, fields: Mapping[str, object]) -> BlockEntry | None:
        """The entry that blocks this code, if any (the first in the list when several do)."""
        if not self._first:
            return None
        keys = [("code", code)]
        keys += [(t, v) for t, name in _BLOCK_FIELDS if isinstance(v := fields.get(name), str)]
        hits = [hit for key in keys if (hit := self._first.get(key)) is not None]
        return min(hits, key=lambda hit: hit[0])[1] if hits else None


@dataclass(frozen=True, slots=True)
class Manifest:
    """The supplier's dispatch data for one document: the unit codes expected."""

    doc: str
    version: int = 0
    supplier: str = ""
    codes: tuple[str, ...] = ()
    relations: Relations = field(default_factory=Relations)

    def expected_units(self, global_relations: Relations) -> frozenset[str]:
        """Every unit code the document should deliver, cases expanded."""
        units: set[str] = set()
        for code in self.codes:
            expanded = global_relations.expand(code, self.relations)
            units.update(expanded if expanded is not None else (code,))
        return frozenset(units)


def _version(obj: Mapping[str, Any], where: str) -> int:
    v = obj.get("version", 0)
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise MasterDataError(f"{where}: version must be a non-negative integer")
    return v


def _codes(values: object, where: str) -> tuple[str, ...]:
    if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values):
        raise MasterDataError(f"{where}: must be a list of code strings")
    return tuple(values)


def relations_from_json(obj: Mapping[str, Any], where: str = "relations") -> Relations:
    """Parse the relations JSON shape."""
    raw = obj.get("relations", {})
    if not isinstance(raw, dict):
        raise MasterDataError(f"{where}: 'relations' must be an object parent -> [children]")
    children = {str(p): _codes(c, f"{where}: relations[{p!r}]") for p, c in raw.items()}
    return Relations(_version(obj, where), children)


def blocklist_from_json(obj: Mapping[str, Any], where: str = "blocklist") -> Blocklist:
    """Parse the blocklist JSON shape."""
    raw = obj.get("entries", [])
    if not isinstance(raw, list):
        raise MasterDataError(f"{where}: 'entries' must be a list")
    entries = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise MasterDataError(f"{where}: entries[{i}] must be an object")
        kind, value, reason = item.get("type"), item.get("value"), item.get("reason", "")
        if kind not in BLOCK_TYPES or not isinstance(value, str) or not value:
            raise MasterDataError(
                f"{where}: entries[{i}] needs type ({'|'.join(BLOCK_TYPES)}) and a value"
            )
        entries.append(BlockEntry(kind, value, str(reason)))
    return Blocklist(_version(obj, where), tuple(entries))


def manifest_from_json(obj: Mapping[str, Any], where: str = "manifest") -> Manifest:
    """Parse the manifest JSON shape."""
    doc = obj.get("doc")
    if not isinstance(doc, str) or not doc:
        raise MasterDataError(f"{where}: 'doc' (the bill id) is required")
    return Manifest(
        doc=doc,
        version=_version(obj, where),
        supplier=str(obj.get("supplier", "")),
        codes=_codes(obj.get("codes", []), f"{where}: codes"),
        relations=relations_from_json(
            {"relations": obj.get("relations", {})}, f"{where}: relations"
        ),
    )


def _csv_rows(text: str, header: Iterable[str], where: str) -> list[dict[str, str]]:
    reader = csv.DictReader(io.StringIO(text))
    missing = set(header) - set(reader.fieldnames or ())
    if missing:
        raise MasterDataError(f"{where}: CSV header lacks {', '.join(sorted(missing))}")
    return [{k: (v or "").strip() for k, v in row.items() if k} for row in reader]


def parse(kind: MasterKind, text: str, where: str, *, csv_version: int = 0) -> Any:
    """Parse a master-data document (JSON object, or CSV for files) of the given kind."""
    stripped = text.lstrip("\ufeff \t\r\n")
    if stripped.startswith("{"):
        try:
            obj = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise MasterDataError(f"{where}: invalid JSON ({exc})") from exc
        if not isinstance(obj, dict):
            raise MasterDataError(f"{where}: must be a JSON object")
        if kind == "catalog":
            raw = obj.get("entries", [])
            if not isinstance(raw, list) or not all(isinstance(r, dict) for r in raw):
                raise MasterDataError(f"{where}: 'entries' must be a list of objects")
            rows = [{k: None if v is None else str(v) for k, v in r.items()} for r in raw]
            return catalog_from_rows(rows, _version(obj, where), where)
        if kind == "relations":
            return relations_from_json(obj, where)
        if kind == "blocklist":
            return blocklist_from_json(obj, where)
        return manifest_from_json(obj, where)
    if kind == "catalog":
        catalog_rows: list[dict[str, str | None]] = [
            dict(r) for r in _csv_rows(stripped, ("code", "level", "ratio"), where)
        ]
        return catalog_from_rows(catalog_rows, csv_version, where)
    if kind == "relations":
        children: dict[str, list[str]] = {}
        for row in _csv_rows(stripped, ("parent", "child"), where):
            children.setdefault(row["parent"], []).append(row["child"])
        return Relations(csv_version, {p: tuple(c) for p, c in children.items()})
    if kind == "blocklist":
        return blocklist_from_json(
            {"version": csv_version, "entries": _csv_rows(stripped, ("type", "value"), where)},
            where,
        )
    manifest_rows = _csv_rows(stripped, ("doc", "code"), where)
    docs = {r["doc"] for r in manifest_rows}
    if len(docs) != 1:
        raise MasterDataError(f"{where}: a manifest CSV holds exactly one doc, found {len(docs)}")
    return Manifest(
        doc=docs.pop(), version=csv_version, codes=tuple(r["code"] for r in manifest_rows)
    )


def load_file(kind: MasterKind, path: Path) -> Any:
    """Read a master-data file; its modification time is the version of CSV files."""
    try:
        text = path.read_text(encoding="utf-8-sig")
        version = int(path.stat().st_mtime)
    except OSError as exc:
        raise MasterDataError(f"{path}: cannot read ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:
        raise MasterDataError(f"{path}: not UTF-8") from exc
    return parse(kind, text, str(path), csv_version=version)


def to_json(value: CatalogSet | Relations | Blocklist | Manifest) -> bytes:
    """Canonical JSON of a set, as persisted (encrypted) in the store."""
    obj: dict[str, Any]
    if isinstance(value, CatalogSet):
        obj = {
            "version": value.version,
            "entries": [
                {
                    "code": e.code,
                    "level": e.level,
                    "ratio": e.ratio,
                    "name": e.name,
                    "parts": e.parts,
                }
                for e in value.catalog.entries.values()
            ],
        }
    elif isinstance(value, Relations):
        obj = {
            "version": value.version,
            "relations": {k: list(v) for k, v in value.children.items()},
        }
    elif isinstance(value, Blocklist):
        obj = {
            "version": value.version,
            "entries": [
                {"type": e.type, "value": e.value, "reason": e.reason} for e in value.entries
            ],
        }
    else:
        obj = {
            "version": value.version,
            "doc": value.doc,
            "supplier": value.supplier,
            "codes": list(value.codes),
            "relations": {k: list(v) for k, v in value.relations.children.items()},
        }
    return json.dumps(obj, ensure_ascii=False, sort_keys=True).encode("utf-8")
