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
CSV: catalog as in SPEC (`code,level,ratio,name[,parts]`); relations `parent,child`; blocklist
`type,value,reason`; manifest `doc,code`. Reading files is the service's (`agent/service/masterfiles.py`).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from agent.rules.aggregation import Relations
from agent.rules.blocklist import BLOCK_TYPES, BlockEntry, Blocklist
from agent.rules.catalog import Catalog, CatalogError, entry_from_row
from agent.rules.manifest import Manifest

MasterKind = Literal["catalog", "relations", "blocklist", "manifest"]
KINDS: Final[tuple[MasterKind, ...]] = ("catalog", "relations", "blocklist", "manifest")


class MasterDataError(ValueError):
    """A master-data document is malformed; the message says where."""


@dataclass(frozen=True, slots=True)
class CatalogSet:
    """A versioned packaging-level catalog."""

    version: int = 0
    catalog: Catalog = field(default_factory=Catalog)


#: One versioned master-data set of any kind.
MasterSet = CatalogSet | Relations | Blocklist | Manifest


def kind_of(value: MasterSet) -> MasterKind:
    """The kind a set is of."""
    if isinstance(value, CatalogSet):
        return "catalog"
    if isinstance(value, Relations):
        return "relations"
    if isinstance(value, Blocklist):
        return "blocklist"
    return "manifest"


def as_kind(text: str) -> MasterKind:
    """`text` as a master-data kind, or `MasterDataError` naming the kinds there are."""
    for kind in KINDS:
        if kind == text:
            return kind
    raise MasterDataError(f"unknown master data kind {text!r} (one of {', '.join(KINDS)})")


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
        block_type = next((t for t in BLOCK_TYPES if t == kind), None)
        if block_type is None or not isinstance(value, str) or not value:
            raise MasterDataError(
                f"{where}: entries[{i}] needs type ({'|'.join(BLOCK_TYPES)}) and a value"
            )
        entries.append(BlockEntry(block_type, value, str(reason)))
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


def parse(kind: MasterKind, text: str, where: str, *, csv_version: int = 0) -> MasterSet:
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


def to_json(value: MasterSet) -> bytes:
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
