"""Master data the guards work from: the catalog, aggregation relations, the blocklist and
manifests, parsed and bounded.

Each set comes from a file (CSV or JSON), a signed envelope from the central ledger (whose
`body` is the set's JSON shape, its version the envelope's), or — where the configuration
allows it — an unsigned retained MQTT message. It is applied whole or not at all: a parse
error or a broken bound leaves the previous set in force. Every bound is checked here, before
anything is applied: document size and JSON depth (`agent.rules.limits`), printable strings of
bounded length, versions 0..2^53-1, and no case that expands past `max_case_units` units.

JSON shapes (`version` only in unsigned documents and files; in an envelope it is outside):
- catalog:   `{"version": 2, "entries": [{"code": "8123456", "level": "unit", "ratio": 1,
  "name": "...", "parts": 1}]}` (the catalog CSV's columns)
- relations: `{"version": 3, "relations": {"<parent code>": ["<child code>", ...]}}`
- blocklist: `{"version": 7, "entries": [{"type": "code|batch|product", "value": "...",
  "reason": "recall 2026-11 批号…"}]}`
- manifest:  `{"version": 1, "doc": "<bill id>", "supplier": "...", "codes": [...],
  "relations": {...}}` — the supplier's dispatch data for one document; `codes` may list
  cases, which are expanded through the manifest's (or the global) relations.
CSV: catalog as in SPEC (`code,level,ratio,name[,parts]`); relations `parent,child`; blocklist
`type,value,reason`; manifest `doc,code`. Reading files is the service's
(`agent/service/masterfiles.py`).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from agent.rules.aggregation import DEFAULT_MAX_CASE_UNITS, Relations
from agent.rules.blocklist import BLOCK_TYPES, BlockEntry, Blocklist
from agent.rules.catalog import Catalog, CatalogError, entry_from_row
from agent.rules.limits import JsonLimits, LimitError, is_printable, load_json
from agent.rules.manifest import Manifest

MasterKind = Literal["catalog", "relations", "blocklist", "manifest"]
KINDS: Final[tuple[MasterKind, ...]] = ("catalog", "relations", "blocklist", "manifest")

#: Where a set came from: the files of the local configuration, or the central ledger.
MasterSource = Literal["local", "central"]
SOURCES: Final[tuple[MasterSource, ...]] = ("local", "central")

#: The largest version taken from any source (JSON numbers above it lose precision).
MAX_VERSION: Final = 2**53 - 1
_MAX_CODE: Final = 256  # a trace code, GS1 element string or MA code, with room to spare
_MAX_TEXT: Final = 256  # a reason, a product name, a supplier
_MAX_DOC: Final = 64  # a document id, as a command barcode carries it
_GS: Final = "\x1d"


class MasterDataError(ValueError):
    """A master-data document is malformed or out of bounds; the message says where."""


@dataclass(frozen=True, slots=True)
class Bounds:
    """How big a master-data document and what it implies may be."""

    max_bytes: int = 4 * 1024 * 1024
    max_case_units: int = DEFAULT_MAX_CASE_UNITS

    @property
    def json(self) -> JsonLimits:
        """The JSON limits of a document."""
        return JsonLimits(max_bytes=self.max_bytes)


DEFAULT_BOUNDS: Final = Bounds()


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
    shown = text[:32].encode("unicode_escape").decode("ascii")
    raise MasterDataError(f"unknown master data kind {shown!r} (one of {', '.join(KINDS)})")


def _version(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_VERSION:
        raise MasterDataError(f"{where}: version must be an integer 0..{MAX_VERSION}")
    return value


def _text(value: object, where: str, max_len: int = _MAX_TEXT) -> str:
    if not isinstance(value, str) or not is_printable(value, max_len):
        raise MasterDataError(f"{where}: must be printable text of at most {max_len} characters")
    return value


def _code(value: object, where: str) -> str:
    """A code: printable characters and GS separators, non-empty, bounded."""
    if (
        not isinstance(value, str)
        or not value
        or len(value) > _MAX_CODE
        or not value.replace(_GS, "").isprintable()
    ):
        raise MasterDataError(f"{where}: must be a code of 1-{_MAX_CODE} printable characters")
    return value


def _codes(values: object, where: str) -> tuple[str, ...]:
    if not isinstance(values, list):
        raise MasterDataError(f"{where}: must be a list of code strings")
    return tuple(_code(v, f"{where}[{i}]") for i, v in enumerate(values))


def _bounded_relations(value: Relations, bounds: Bounds, where: str) -> Relations:
    runaway = value.largest(bounds.max_case_units)
    if runaway is not None:
        raise MasterDataError(
            f"{where}: {runaway[0][:64]!r} expands to more than {bounds.max_case_units} units"
            " ([policy] max_case_units)"
        )
    return value


def _relations(raw: object, version: int, where: str, bounds: Bounds) -> Relations:
    if not isinstance(raw, dict):
        raise MasterDataError(f"{where}: 'relations' must be an object parent -> [children]")
    children = {
        _code(p, f"{where} parent"): _codes(c, f"{where}[{str(p)[:64]!r}]") for p, c in raw.items()
    }
    return _bounded_relations(Relations(version, children), bounds, where)


def _catalog(raw: object, version: int, where: str) -> CatalogSet:
    if not isinstance(raw, list):
        raise MasterDataError(f"{where}: 'entries' must be a list of objects")
    rows: list[dict[str, str | None]] = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise MasterDataError(f"{where}: entries[{i}] must be an object")
        row: dict[str, str | None] = {}
        for key in ("code", "level", "ratio", "name", "parts"):
            value = item.get(key)
            if value is None:
                row[key] = None
            elif isinstance(value, bool) or not isinstance(value, str | int):
                raise MasterDataError(f"{where}: entries[{i}].{key} must be text or a number")
            else:
                row[key] = _text(str(value), f"{where}: entries[{i}].{key}")
        rows.append(row)
    return catalog_from_rows(rows, version, where)


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


def _blocklist(raw: object, version: int, where: str) -> Blocklist:
    if not isinstance(raw, list):
        raise MasterDataError(f"{where}: 'entries' must be a list")
    entries = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise MasterDataError(f"{where}: entries[{i}] must be an object")
        kind = item.get("type")
        block_type = next((t for t in BLOCK_TYPES if t == kind), None)
        if block_type is None:
            raise MasterDataError(
                f"{where}: entries[{i}] needs type ({'|'.join(BLOCK_TYPES)}) and a value"
            )
        value = _code(item.get("value"), f"{where}: entries[{i}].value")
        reason = _text(item.get("reason", ""), f"{where}: entries[{i}].reason")
        entries.append(BlockEntry(block_type, value, reason))
    return Blocklist(version, tuple(entries))


def _manifest(obj: Mapping[str, Any], version: int, where: str, bounds: Bounds) -> Manifest:
    doc = obj.get("doc")
    if not isinstance(doc, str) or not doc:
        raise MasterDataError(f"{where}: 'doc' (the bill id) is required")
    return Manifest(
        doc=_text(doc, f"{where}: doc", _MAX_DOC),
        version=version,
        supplier=_text(obj.get("supplier", ""), f"{where}: supplier"),
        codes=_codes(obj.get("codes", []), f"{where}: codes"),
        relations=_relations(obj.get("relations", {}), 0, f"{where}: relations", bounds),
    )


def from_body(
    kind: MasterKind,
    body: Mapping[str, Any],
    version: int,
    where: str,
    bounds: Bounds = DEFAULT_BOUNDS,
) -> MasterSet:
    """A set from its JSON shape (a parsed object) at `version`, or `MasterDataError`."""
    version = _version(version, where)
    if kind == "catalog":
        return _catalog(body.get("entries", []), version, where)
    if kind == "relations":
        return _relations(body.get("relations", {}), version, where, bounds)
    if kind == "blocklist":
        return _blocklist(body.get("entries", []), version, where)
    return _manifest(body, version, where, bounds)


def _csv_rows(text: str, header: Iterable[str], where: str) -> list[dict[str, str]]:
    reader = csv.DictReader(io.StringIO(text))
    missing = set(header) - set(reader.fieldnames or ())
    if missing:
        raise MasterDataError(f"{where}: CSV header lacks {', '.join(sorted(missing))}")
    try:
        return [{k: (v or "").strip() for k, v in row.items() if k} for row in reader]
    except csv.Error as exc:
        raise MasterDataError(f"{where}: not CSV ({exc})") from None


def parse(
    kind: MasterKind,
    text: str,
    where: str,
    *,
    csv_version: int = 0,
    bounds: Bounds = DEFAULT_BOUNDS,
) -> MasterSet:
    """Parse a master-data document (a JSON object with its `version`, or CSV for files)."""
    stripped = text.lstrip("\ufeff \t\r\n")
    if len(stripped.encode("utf-8", "surrogatepass")) > bounds.max_bytes:
        raise MasterDataError(f"{where}: larger than {bounds.max_bytes} bytes")
    if stripped.startswith("{"):
        try:
            obj = load_json(stripped, bounds.json)
        except LimitError as exc:
            raise MasterDataError(f"{where}: invalid JSON ({exc})") from None
        if not isinstance(obj, dict):
            raise MasterDataError(f"{where}: must be a JSON object")
        return from_body(kind, obj, _version(obj.get("version", 0), where), where, bounds)
    if kind == "catalog":
        rows = _csv_rows(stripped, ("code", "level", "ratio"), where)
        catalog_rows: list[dict[str, str | None]] = [dict(r) for r in rows]
        return catalog_from_rows(catalog_rows, csv_version, where)
    if kind == "relations":
        children: dict[str, list[str]] = {}
        for row in _csv_rows(stripped, ("parent", "child"), where):
            children.setdefault(row["parent"], []).append(row["child"])
        return _relations(children, csv_version, where, bounds)
    if kind == "blocklist":
        return _blocklist(_csv_rows(stripped, ("type", "value"), where), csv_version, where)
    manifest_rows = _csv_rows(stripped, ("doc", "code"), where)
    docs = {r["doc"] for r in manifest_rows}
    if len(docs) != 1:
        raise MasterDataError(f"{where}: a manifest CSV holds exactly one doc, found {len(docs)}")
    body = {"doc": docs.pop(), "codes": [r["code"] for r in manifest_rows]}
    return _manifest(body, csv_version, where, bounds)


def body_of(value: MasterSet) -> dict[str, Any]:
    """A set's JSON shape without its version (the `body` of an envelope)."""
    if isinstance(value, CatalogSet):
        return {
            "entries": [
                {
                    "code": e.code,
                    "level": e.level,
                    "ratio": e.ratio,
                    "name": e.name,
                    "parts": e.parts,
                }
                for e in value.catalog.entries.values()
            ]
        }
    if isinstance(value, Relations):
        return {"relations": {k: list(v) for k, v in value.children.items()}}
    if isinstance(value, Blocklist):
        return {
            "entries": [
                {"type": e.type, "value": e.value, "reason": e.reason} for e in value.entries
            ]
        }
    return {
        "doc": value.doc,
        "supplier": value.supplier,
        "codes": list(value.codes),
        "relations": {k: list(v) for k, v in value.relations.children.items()},
    }


def to_json(value: MasterSet) -> bytes:
    """Canonical JSON of a set with its version, as persisted (encrypted) in the store."""
    obj = {"version": value.version, **body_of(value)}
    return json.dumps(obj, ensure_ascii=False, sort_keys=True).encode("utf-8")
