"""The master data in force on the writer thread: catalog, packing relations, blocklist and
receiving manifests, each versioned, applied whole or not at all, and persisted (sealed) in
the store so the guards keep working offline after a reboot.
"""

from __future__ import annotations

import logging
from typing import Final

from agent.rules.aggregation import Relations
from agent.rules.blocklist import Blocklist
from agent.rules.catalog import Catalog
from agent.rules.manifest import Manifest
from agent.rules.masterdata import (
    CatalogSet,
    MasterDataError,
    MasterKind,
    MasterSet,
    as_kind,
    kind_of,
    parse,
    to_json,
)
from agent.store import NamedBlob

log = logging.getLogger(__name__)

#: Stored names are `master/<kind>` (and `master/manifest/<doc>`).
BLOB_PREFIX: Final = "master/"


def blob_name(value: MasterSet) -> str:
    """The store's name for a set."""
    kind = kind_of(value)
    return BLOB_PREFIX + kind + (f"/{value.doc}" if isinstance(value, Manifest) else "")


class MasterData:
    """The sets in force. Used only from the writer thread."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.catalog_set: CatalogSet | None = None  # set by an update (files, MQTT, API)
        self.relations = Relations()
        self.blocklist = Blocklist()
        self.manifests: dict[str, Manifest] = {}
        self._expected: dict[str, tuple[Manifest, Relations, frozenset[str]]] = {}

    def current(self, kind: MasterKind, value: MasterSet) -> MasterSet | None:
        """The set of `value`'s kind (and document) in force, if any."""
        if kind == "catalog":
            return self.catalog_set
        if kind == "relations":
            return self.relations if self.relations.version or self.relations.children else None
        if kind == "blocklist":
            return self.blocklist if self.blocklist.version or self.blocklist.entries else None
        return self.manifests.get(value.doc) if isinstance(value, Manifest) else None

    def offer(self, value: MasterSet) -> NamedBlob | None:
        """Install `value` if it is newer than what is in force; the blob to persist, if so."""
        current = self.current(kind_of(value), value)
        if current is not None and current.version >= value.version:
            return None
        self._install(value)
        return NamedBlob(blob_name(value), value.version, to_json(value))

    def _install(self, value: MasterSet) -> None:
        if isinstance(value, CatalogSet):
            self.catalog_set = value
            self.catalog = value.catalog
        elif isinstance(value, Relations):
            self.relations = value
        elif isinstance(value, Blocklist):
            self.blocklist = value
        else:
            self.manifests[value.doc] = value

    def restore(self, blobs: list[NamedBlob]) -> None:
        """Install the sets persisted in the store; an unreadable one is logged and skipped."""
        for blob in blobs:
            kind = blob.name[len(BLOB_PREFIX) :].partition("/")[0]
            try:
                self._install(parse(as_kind(kind), blob.data.decode(), blob.name))
            except (MasterDataError, ValueError) as exc:
                log.error("master data %s in the store is unreadable (%s); ignored", blob.name, exc)

    def manifest(self, doc: str | None) -> Manifest | None:
        """The manifest of a document, if one is in force."""
        return self.manifests.get(doc) if doc else None

    def is_parent(self, code: str, doc: str | None) -> bool:
        """Whether `code` is known to contain other codes (globally or in the doc's manifest)."""
        manifest = self.manifest(doc)
        return self.relations.is_parent(code) or (
            manifest is not None and manifest.relations.is_parent(code)
        )

    def expand(self, code: str, doc: str | None) -> tuple[str, ...] | None:
        """The unit codes in `code`, from the global and the document's packing relations."""
        manifest = self.manifest(doc)
        return self.relations.expand(code, manifest.relations if manifest else None)

    def expected_units(self, manifest: Manifest) -> frozenset[str]:
        """The manifest's unit codes, cases expanded; recomputed only when master data changes."""
        cached = self._expected.get(manifest.doc)
        if cached is None or cached[0] is not manifest or cached[1] is not self.relations:
            cached = (manifest, self.relations, manifest.expected_units(self.relations))
            self._expected[manifest.doc] = cached
        return cached[2]
