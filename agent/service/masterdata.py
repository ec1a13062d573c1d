"""The master data in force on the writer thread, and the gate master data from the network
passes before it gets there.

Two sources, kept apart so that neither can shadow the other:
- `local`: the files the local configuration names (trusted: the local trust boundary), their
  modification time as version;
- `central`: sets from the central ledger over MQTT, signed with the pinned central key (or,
  without a key and only with `[masterdata] allow_unsigned = true`, unsigned).
Each source's sets are versioned per kind (per document for manifests) and replaced only by a
newer version. What the guards see merges them: blocked if either blocklist blocks; central
catalog entries, packing relations and manifests win over local ones for the same code, parent
or document. Everything is persisted sealed in the store, so the guards work offline after a
reboot, and re-validated when read back: a persisted set that no longer passes is set aside
with an alert.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from agent.records.downlink import Refused, open_envelope
from agent.rules.aggregation import Relations
from agent.rules.blocklist import BlockEntry, Blocklist
from agent.rules.catalog import Catalog
from agent.rules.decision import Decision
from agent.rules.manifest import Manifest
from agent.rules.masterdata import (
    DEFAULT_BOUNDS,
    SOURCES,
    Bounds,
    CatalogSet,
    MasterDataError,
    MasterKind,
    MasterSet,
    MasterSource,
    as_kind,
    from_body,
    kind_of,
    parse,
    to_json,
)
from agent.store import NamedBlob

log = logging.getLogger(__name__)


#: Stored names are `master/<source>/<kind>` (and `…/manifest/<doc>`).
BLOB_PREFIX: Final = "master/"


def blob_name(value: MasterSet, source: MasterSource) -> str:
    """The store's name for a set."""
    kind = kind_of(value)
    doc = f"/{value.doc}" if isinstance(value, Manifest) else ""
    return f"{BLOB_PREFIX}{source}/{kind}{doc}"


def _slot(value: MasterSet) -> str:
    """Which set of its source a value replaces: its kind, or the manifest's document."""
    return f"manifest/{value.doc}" if isinstance(value, Manifest) else kind_of(value)


@dataclass(frozen=True, slots=True)
class Offer:
    """What offering a set did: the blob to persist when applied, else why not."""

    blob: NamedBlob | None
    current: int | None = None  # the version in force that was not older

    @property
    def applied(self) -> bool:
        """The set is now in force."""
        return self.blob is not None


class MasterData:
    """The sets in force, per source. Used only from the writer thread."""

    def __init__(self, catalog: Catalog, bounds: Bounds = DEFAULT_BOUNDS) -> None:
        self.bounds = bounds
        self._base_catalog = catalog
        self._sets: dict[MasterSource, dict[str, MasterSet]] = {s: {} for s in SOURCES}
        self.alerts: list[str] = []  # persisted sets set aside while restoring
        self._expected: dict[str, tuple[Manifest, Relations, frozenset[str]]] = {}
        self._merge()

    # --- what the guards see -----------------------------------------------------------------

    def _merge(self) -> None:
        local, central = self._sets["local"], self._sets["central"]
        entries = dict(self._base_catalog.entries)
        children: dict[str, tuple[str, ...]] = {}
        for sets in (local, central):  # central last: it wins per code and per parent
            if isinstance(cat := sets.get("catalog"), CatalogSet):
                entries.update(cat.catalog.entries)
            if isinstance(rel := sets.get("relations"), Relations):
                children.update(rel.children)
        self.catalog = Catalog(entries)
        self.relations = Relations(0, children)
        self._blocklists = [
            b for s in (central, local) if isinstance(b := s.get("blocklist"), Blocklist)
        ]
        self.manifests = {
            m.doc: m for sets in (local, central) for m in sets.values() if isinstance(m, Manifest)
        }
        #: the central versions in force, replaced (never changed) on every update, so that
        #: other threads (the uplink's status message) may read it
        self.published: dict[str, Any] = self.versions("central")

    def blocked(self, decision: Decision) -> BlockEntry | None:
        """The entry that blocks this pack in either blocklist (central first), if any: by its
        code as scanned, by its identity (a GS1 pack however spelled), or by its fields."""
        for blocklist in self._blocklists:
            for code in dict.fromkeys((decision.text, decision.identity)):
                hit = blocklist.match(code, decision.fields)
                if hit is not None:
                    return hit
        return None

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
        """The unit codes in `code`, from the global and the document's packing relations.

        Raises `TooManyUnits` past `[policy] max_case_units`.
        """
        manifest = self.manifest(doc)
        extra = manifest.relations if manifest else None
        return self.relations.expand(code, extra, limit=self.bounds.max_case_units)

    def expected_units(self, manifest: Manifest) -> frozenset[str]:
        """The manifest's unit codes, cases expanded; recomputed only when master data changes."""
        cached = self._expected.get(manifest.doc)
        if cached is None or cached[0] is not manifest or cached[1] is not self.relations:
            cached = (manifest, self.relations, manifest.expected_units(self.relations))
            self._expected[manifest.doc] = cached
        return cached[2]

    # --- updates --------------------------------------------------------------------------

    def offer(self, value: MasterSet, source: MasterSource) -> Offer:
        """Install `value` if it is newer than its source's set in force; what to persist."""
        current = self._sets[source].get(_slot(value))
        if current is not None and current.version >= value.version:
            return Offer(None, current.version)
        self._sets[source][_slot(value)] = value
        self._merge()
        return Offer(NamedBlob(blob_name(value, source), value.version, to_json(value)))

    def versions(self, source: MasterSource = "central") -> dict[str, Any]:
        """The version in force per kind (manifests per document) of one source."""
        sets = self._sets[source].values()
        return stored_versions({blob_name(v, source): v.version for v in sets}, source)

    def restore(self, blobs: list[NamedBlob]) -> None:
        """Install the sets persisted in the store, each re-validated; a set that fails is set
        aside with an alert (kept in the store for forensics, not used)."""
        for blob in blobs:
            rest = blob.name[len(BLOB_PREFIX) :]
            head, _, tail = rest.partition("/")
            # Sets stored before the sources were kept apart came from files or unsigned MQTT:
            # they are local now, so no old version can shadow a signed central one.
            source: MasterSource = "central" if head == "central" else "local"
            kind_text = tail.partition("/")[0] if head in SOURCES else head
            try:
                value = parse(as_kind(kind_text), blob.data.decode(), blob.name, bounds=self.bounds)
            except (MasterDataError, UnicodeDecodeError) as exc:
                text = f"persisted master data {blob.name} set aside: {exc}"
                log.error("ALERT: %s", text)
                self.alerts.append(text)
                continue
            self.offer(value, source)


def stored_versions(named: Mapping[str, int], source: MasterSource = "central") -> dict[str, Any]:
    """The versions in force of one source, from the store's blob names and versions (what
    `status` reports, running or not)."""
    out: dict[str, Any] = {"catalog": 0, "relations": 0, "blocklist": 0, "manifest": {}}
    prefix = f"{BLOB_PREFIX}{source}/"
    for name, version in named.items():
        if not name.startswith(prefix):
            continue
        kind, _, doc = name[len(prefix) :].partition("/")
        if kind == "manifest" and doc:
            out["manifest"][doc] = version
        elif kind in out and kind != "manifest":
            out[kind] = version
    return out


class MasterGate:
    """Decides whether master data from the network may be applied (runs on the uplink thread).

    With a pinned central key, only envelopes signed by it and addressed to this device (or to
    every device of its site) pass; without one, unsigned documents pass only when allowed.
    Everything is parsed and bounded here, off the writer thread.
    """

    def __init__(
        self,
        key: Ed25519PublicKey | None,
        *,
        allow_unsigned: bool,
        site: str,
        device: str,
        bounds: Bounds = DEFAULT_BOUNDS,
    ) -> None:
        self.key = key
        self.allow_unsigned = allow_unsigned
        self.site = site
        self.device = device
        self.bounds = bounds

    def open(self, path: str, payload: bytes) -> MasterSet:
        """The set a retained message on `master/<path>` carries; `Refused` or
        `MasterDataError` when it must not be applied."""
        kind = _topic_kind(path)
        where = f"{kind} from MQTT"
        if self.key is not None:
            envelope = open_envelope(
                payload, self.key, site=self.site, device=self.device, limits=self.bounds.json
            )
            if envelope.kind != kind:
                raise Refused("misaddressed", f"a {envelope.kind!r} envelope on a {kind} topic")
            value = from_body(kind, envelope.body, envelope.version, where, self.bounds)
        elif self.allow_unsigned:
            try:
                text = payload.decode("utf-8")
            except UnicodeDecodeError:
                raise Refused("malformed", "not UTF-8") from None
            value = parse(kind, text, where, bounds=self.bounds)
        else:
            raise Refused(
                "unsigned",
                "no [central] public_key to verify it with; set one (or, on a trusted test"
                " network only, [masterdata] allow_unsigned = true)",
            )
        if isinstance(value, Manifest) and path.count("/") == 1 and path.split("/")[1] != value.doc:
            raise Refused("misaddressed", f"manifest for {value.doc!r} on another document's topic")
        return value


def _topic_kind(path: str) -> MasterKind:
    try:
        return as_kind(path.split("/", 1)[0])
    except MasterDataError as exc:
        raise Refused("malformed", str(exc)) from None
