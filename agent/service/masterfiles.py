"""Master data from the files the local configuration names: read, decoded and parsed.

Files named in the local config are trusted (the trust boundary of ARCHITECTURE.md); a file
that cannot be read or parsed is an error naming the file, raised before anything is applied.
"""

from __future__ import annotations

from pathlib import Path

from agent.rules.catalog import Catalog, CatalogError, parse_catalog_csv
from agent.rules.masterdata import (
    DEFAULT_BOUNDS,
    Bounds,
    MasterDataError,
    MasterKind,
    MasterSet,
    parse,
)


def read_text(path: Path, error: type[ValueError]) -> str:
    """A UTF-8 (optionally BOM-prefixed) text file, or `error` naming the file and the cause."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise error(f"{path}: cannot read ({exc.strerror or exc})") from exc
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8") from exc


def read_catalog(path: Path) -> Catalog:
    """The catalog CSV at `path`, or `CatalogError` naming the file and the first bad line."""
    return parse_catalog_csv(read_text(path, CatalogError), str(path))


def read_master_file(kind: MasterKind, path: Path, bounds: Bounds = DEFAULT_BOUNDS) -> MasterSet:
    """A master-data file (CSV or JSON); its modification time is the version of CSV files."""
    text = read_text(path, MasterDataError)
    try:
        version = int(path.stat().st_mtime)
    except OSError as exc:
        raise MasterDataError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    return parse(kind, text, str(path), csv_version=version, bounds=bounds)
