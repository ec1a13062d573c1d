"""One scan's decision with everything the regime requires, batched for one transaction.

The daemon's writer thread feeds scans, PUBACK notices and control requests (from command
barcodes or the local API) through `Pipeline.run_batch`; the pipeline decides each in order
against the scanner's context (operation, document), the stateless recognition and level
guard, the double-read window, the blocklist, per-code custody state (a unit sold twice is a
回流 signal), aggregation (a case at receiving stands for its children), and the receiving
document's manifest. Everything a batch produces is committed in one transaction.

Case codes at receive/dispatch are recorded as **one event per child unit** (with the case in
`fields.parent`): every unit then has its own seq, custody state and upload line, exactly as
if it had been scanned, and downstream systems need no second event shape.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
import uuid
from collections import OrderedDict
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import Any, Final

from agent.config import Config
from agent.records.envelope import ChainHead, Unsigned, chain_head, prepare, rfc3339
from agent.records.signing import sign_all, sign_reject
from agent.rules import commands, masterdata
from agent.rules.catalog import Catalog
from agent.rules.custody import DISPENSING, Refusal, custody
from agent.rules.decision import Decision, assess
from agent.rules.double_reads import DoubleReadFilter
from agent.rules.masterdata import Blocklist, Manifest, MasterKind, Relations
from agent.rules.operations import BILL_TYPES, OPERATIONS, UNIT_ONLY_OPERATIONS
from agent.store import CodeMark, NamedBlob, NewRecord, Store, Topic
from agent.store.keys import KeyRing
from drivers import RawScan

log = logging.getLogger(__name__)

DEFAULT_SOURCE: Final = "*"
_RECENT_DOCS: Final = 256
_REBUILD_WINDOW: Final = 30 * 86400.0

Reply = Future[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Control:
    """A request for the writer thread (local API, CLI, MQTT master data)."""

    action: str
    params: dict[str, Any]
    reply: Reply = field(default_factory=Future)


@dataclass(frozen=True, slots=True)
class Accepted:
    """What undo needs to void one accepted event."""

    seq: int
    decision: Decision
    op: str
    doc: str | None
    mac: bytes


@dataclass(slots=True)
class ScanContext:
    """One scanner's operation and document, and whether it waits for an acknowledgement."""

    op: str
    doc: str | None = None
    held: Decision | None = None
    last: list[Accepted] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """For the API and persistence."""
        return {
            "op": self.op,
            "doc": self.doc,
            "held": self.held.reason if self.held else None,
        }


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one scan ended, for worker feedback (after the commit)."""

    scan: RawScan
    decision: Decision
    seq: int | None = None
    note: str | None = None  # a non-scan message (command applied, double read absorbed)


@dataclass(frozen=True, slots=True)
class Draft:
    """A record of the batch, serialised and chained (events) but not yet signed."""

    topic: Topic
    unsigned: Unsigned
    seq: int | None = None


@dataclass(slots=True)
class Batch:
    """Everything one transaction will write, plus what to tell afterwards."""

    head: ChainHead
    drafts: list[Draft] = field(default_factory=list)
    marks: list[CodeMark] = field(default_factory=list)
    unmarks: list[bytes] = field(default_factory=list)
    named: list[NamedBlob] = field(default_factory=list)
    acked: list[int] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    replies: list[tuple[Reply, dict[str, Any]]] = field(default_factory=list)
    pending: dict[bytes, tuple[str | None, int]] = field(default_factory=dict)
    macs: dict[str, bytes] = field(default_factory=dict)
    quarantine: list[int] = field(default_factory=list)


class Pipeline:
    """The decision state of a running agent; used only from the writer thread."""

    def __init__(self, config: Config, store: Store, keys: KeyRing, catalog: Catalog) -> None:
        self.config = config
        self.store = store
        self.keys = keys
        self.catalog = catalog
        self.lang = config.device.lang
        self.double_reads = DoubleReadFilter(config.policy.double_read_window)
        self.relations = Relations()
        self.blocklist = Blocklist()
        self.manifests: dict[str, Manifest] = {}
        self.contexts: dict[str, ScanContext] = {
            DEFAULT_SOURCE: ScanContext(config.operation.mode, config.operation.doc)
        }
        self._received: dict[str, set[str]] = {}
        self._unexpected: dict[str, set[str]] = {}
        self._expected: dict[str, tuple[Manifest, Relations, frozenset[str]]] = {}
        self._doc_codes: OrderedDict[str, list[str]] = OrderedDict()
        self.counters: dict[str, int] = {}
        self._catalog_set: masterdata.CatalogSet | None = None  # set by MQTT/API updates
        self._load_persisted()

    # --- state kept across restarts --------------------------------------------------------

    def _load_persisted(self) -> None:
        for blob in self.store.named_like("master/"):
            kind = blob.name[len("master/") :].partition("/")[0]
            try:
                self._install(kind, masterdata.parse(_kind(kind), blob.data.decode(), blob.name))
            except (masterdata.MasterDataError, ValueError) as exc:
                log.error("master data %s in the store is unreadable (%s); ignored", blob.name, exc)
        saved = self.store.named("context")
        if saved is not None:
            for source, ctx in json.loads(saved.data).items():
                if ctx.get("op") in OPERATIONS:
                    self.contexts[source] = ScanContext(ctx["op"], ctx.get("doc"))

    def load_files(self) -> list[NamedBlob]:
        """Master data from the configured files; returns blobs to persist (newer versions)."""
        out: list[NamedBlob] = []
        md = self.config.masterdata
        sources: list[tuple[MasterKind, Any]] = []
        if md.relations:
            sources.append(("relations", md.relations))
        if md.blocklist:
            sources.append(("blocklist", md.blocklist))
        sources += [("manifest", p) for p in md.manifests]
        for kind, path in sources:
            value = masterdata.load_file(kind, path)
            blob = self._offer(kind, value)
            if blob:
                out.append(blob)
        return out

    def _offer(self, kind: MasterKind, value: Any) -> NamedBlob | None:
        """Install `value` if it is newer than what is in force; the blob to persist."""
        name = f"master/{kind}" + (f"/{value.doc}" if kind == "manifest" else "")
        current = self._current(kind, value)
        if current is not None and current.version >= value.version:
            return None
        self._install(kind, value)
        return NamedBlob(name, value.version, masterdata.to_json(value))

    def _current(self, kind: str, value: Any) -> Any:
        if kind == "catalog":
            return self._catalog_set
        if kind == "relations":
            return self.relations if self.relations.version or self.relations.children else None
        if kind == "blocklist":
            return self.blocklist if self.blocklist.version or self.blocklist.entries else None
        return self.manifests.get(value.doc)

    def _install(self, kind: str, value: Any) -> None:
        if kind == "catalog":
            self._catalog_set = value
            self.catalog = value.catalog
        elif kind == "relations":
            self.relations = value
        elif kind == "blocklist":
            self.blocklist = value
        elif kind == "manifest":
            self.manifests[value.doc] = value

    def _persist_contexts(self, batch: Batch) -> None:
        data = {s: {"op": c.op, "doc": c.doc} for s, c in self.contexts.items()}
        batch.named.append(NamedBlob("context", 0, json.dumps(data, sort_keys=True).encode()))

    def context(self, source: str) -> ScanContext:
        """The scanner's context (created from the default on first use)."""
        ctx = self.contexts.get(source)
        if ctx is None:
            default = self.contexts[DEFAULT_SOURCE]
            ctx = self.contexts[source] = ScanContext(default.op, default.doc)
        return ctx

    # --- one batch -------------------------------------------------------------------------

    def new_batch(self) -> Batch:
        """An empty batch continuing the chain."""
        return Batch(head=self.store.head)

    def sign(self, batch: Batch) -> list[NewRecord]:
        """The batch's records, signed all at once (see `sign_all`): what to commit, in order.

        The chain hashes the bytes without `sig`, so every head was settled while deciding
        and no decision waits for a signature.
        """
        payloads = sign_all([d.unsigned for d in batch.drafts], self.keys.signing)
        return [NewRecord(d.topic, p, d.seq) for d, p in zip(batch.drafts, payloads, strict=True)]

    def _chain(self, batch: Batch, body: dict[str, Any]) -> int:
        """Append an event body to the batch's chain; its seq."""
        body["seq"] = seq = batch.head.seq + 1
        body["prev"] = batch.head.hash
        unsigned = prepare(body)
        batch.head = chain_head(body, unsigned)
        batch.drafts.append(Draft("event", unsigned, seq))
        return seq

    def scan(self, batch: Batch, scan: RawScan) -> None:
        """Decide one scan into the batch."""
        text = scan.text.strip()
        if commands.is_command(text):
            self._command(batch, scan, text)
            return
        ctx = self.context(scan.source)
        today = _local_date(scan.received_at)
        decision = assess(scan.text, op=ctx.op, catalog=self.catalog, today=today)
        if self.double_reads.repeat(scan.source, decision.text, scan.received_at):
            self._count("duplicate_scan")
            batch.outcomes.append(
                Outcome(scan, decision.refused("duplicate_scan"), note="duplicate_scan")
            )
            return
        if ctx.held is not None:
            refused = replace(decision, accepted=False, reason="awaiting_ack", variant=None)
            self._refuse(batch, scan, ctx, refused)
            return
        if not decision.accepted:
            needs_ack = decision.reason == "level_not_allowed"
            self._refuse(batch, scan, ctx, decision, needs_ack=needs_ack)
            return
        refusal, units = self._stateful(batch, ctx, decision)
        if refusal is not None:
            refused = replace(
                decision,
                accepted=False,
                reason=refusal.reason,
                variant=refusal.variant,
                detail=refusal.detail,
            )
            self._refuse(batch, scan, ctx, refused, needs_ack=refusal.needs_ack)
            return
        ctx.last = []
        for unit in units:
            self._accept(batch, scan, ctx, unit)
        if len(units) > 1:
            self._count("case_expanded")

    def _stateful(
        self, batch: Batch, ctx: ScanContext, decision: Decision
    ) -> tuple[Refusal | None, list[Decision]]:
        """Blocklist, aggregation, custody and manifest: the refusal, or the units to record."""
        block = self.blocklist.match(decision.text, decision.fields)
        if block is not None:
            return Refusal("blocked", None, needs_ack=True, detail=block.reason), []
        units = [decision]
        is_parent = self.relations.is_parent(decision.text) or (
            ctx.doc in self.manifests and self.manifests[ctx.doc].relations.is_parent(decision.text)
        )
        if ctx.op in UNIT_ONLY_OPERATIONS and is_parent:
            return Refusal("level_not_allowed", None, needs_ack=True), []
        if decision.level in ("middle", "case", "pallet") or is_parent:
            extra = self.manifests[ctx.doc].relations if ctx.doc in self.manifests else None
            children = self.relations.expand(decision.text, extra)
            if children is None:
                if ctx.op in ("receive", "dispatch"):
                    return Refusal("no_aggregation"), []
            else:
                units = [self._child(decision, code) for code in children]
        for unit in units:
            refusal = self._custody(batch, ctx.op, unit)
            if refusal is not None:
                return refusal, []
        manifest = self.manifests.get(ctx.doc or "") if ctx.op == "receive" else None
        if manifest is not None:
            expected = self._expected_units(manifest)
            strays = [u.text for u in units if u.text not in expected]
            if strays:
                self._unexpected.setdefault(manifest.doc, set()).update(strays)
                if self.config.policy.manifest_mode == "refuse":
                    return Refusal("not_in_manifest", detail=manifest.doc), []
                units = [replace(u, fields={**u.fields, "manifest": "unexpected"}) for u in units]
        return None, units

    def _expected_units(self, manifest: Manifest) -> frozenset[str]:
        """The manifest's unit codes, cases expanded; recomputed only when master data changes."""
        cached = self._expected.get(manifest.doc)
        if cached is None or cached[0] is not manifest or cached[1] is not self.relations:
            cached = (manifest, self.relations, manifest.expected_units(self.relations))
            self._expected[manifest.doc] = cached
        return cached[2]

    def _child(self, parent: Decision, code: str) -> Decision:
        child = assess(code, op="receive", catalog=self.catalog, today=dt.date.min)
        fields = {**child.fields, "parent": parent.text}
        return replace(child, accepted=True, reason=None, fields=fields, input=code)

    def _custody(self, batch: Batch, op: str, unit: Decision) -> Refusal | None:
        _, (last_op, count) = self._state(batch, unit.text)
        entry = self.catalog.entry_for(unit.kind, unit.fields)
        return custody(op, last_op, count, parts=entry.parts if entry else 1)

    def _state(self, batch: Batch, code: str) -> tuple[bytes, tuple[str | None, int]]:
        """The code's keyed hash and custody state as this batch sees it (one lookup each)."""
        mac = batch.macs.get(code)
        if mac is None:
            mac = batch.macs[code] = self.store.mac(code)
        state = batch.pending.get(mac)
        if state is None:
            state = batch.pending[mac] = _state_tuple(self.store, mac)
        return mac, state

    def _accept(self, batch: Batch, scan: RawScan, ctx: ScanContext, unit: Decision) -> None:
        seq = self._chain(batch, self._envelope(scan, ctx.op, ctx.doc, unit))
        mac, (last_op, count) = self._state(batch, unit.text)
        if ctx.op != "stock_count":  # a count observes; it changes no custody
            batch.marks.append(CodeMark(mac, ctx.op, seq))
            same = last_op == ctx.op or (last_op in DISPENSING and ctx.op in DISPENSING)
            batch.pending[mac] = (ctx.op, count + 1 if same else 1)
        ctx.last.append(Accepted(seq, unit, ctx.op, ctx.doc, mac))
        if ctx.doc:
            if ctx.op == "receive" and ctx.doc in self.manifests:
                self._received_for(ctx.doc).add(unit.text)
            codes = self._doc_codes.setdefault(ctx.doc, [])
            codes.append(unit.text)
            self._doc_codes.move_to_end(ctx.doc)
            while len(self._doc_codes) > _RECENT_DOCS:
                self._doc_codes.popitem(last=False)
        self._count(f"accepted.{ctx.op}")
        batch.outcomes.append(Outcome(scan, unit, seq))

    def reject_record(self, scan: RawScan, ctx: ScanContext, decision: Decision) -> NewRecord:
        """The signed reject record for a refused scan."""
        return NewRecord(
            "reject", sign_reject(self._reject(scan, ctx, decision), self.keys.signing)
        )

    def _reject(self, scan: RawScan, ctx: ScanContext, decision: Decision) -> dict[str, Any]:
        body = self._envelope(scan, ctx.op, ctx.doc, decision)
        body["reason"] = decision.reason
        body["message"] = decision.message(self.lang)
        return body

    def _refuse(
        self,
        batch: Batch,
        scan: RawScan,
        ctx: ScanContext,
        decision: Decision,
        *,
        needs_ack: bool = False,
    ) -> None:
        batch.drafts.append(Draft("reject", prepare(self._reject(scan, ctx, decision))))
        self._count(f"refused.{decision.reason}")
        note = None
        if needs_ack and self.config.policy.stop_the_line:
            ctx.held = decision
            note = "held"
        batch.outcomes.append(Outcome(scan, decision, None, note=note))

    def header(self, at: float) -> dict[str, Any]:
        """The fields every record this device publishes starts with."""
        return {
            "v": 1,
            "id": _uuid4(),
            "device": self.config.device.id,
            "site": self.config.device.site,
            "ts": rfc3339(at),
        }

    def _envelope(self, scan: RawScan, op: str, doc: str | None, d: Decision) -> dict[str, Any]:
        return {
            **self.header(scan.received_at),
            "op": op,
            "code": d.text,
            "kind": d.kind,
            "level": d.level,
            "fields": {**d.fields, "bill_type": BILL_TYPES[op]},
            "doc": doc,
        }

    def forget(self, batch: Batch) -> None:
        """Undo the in-memory effects of a batch whose commit failed.

        The scans were refused (`buffer_full`), so a rescan must not be absorbed as a double
        read, undo must not point at numbers never committed, and per-document caches are
        rebuilt from the store when next needed.
        """
        committed = self.store.head.seq
        for out in batch.outcomes:
            self.double_reads.forget(out.scan.source, out.decision.text)
        for ctx in self.contexts.values():
            ctx.last = [a for a in ctx.last if a.seq <= committed]
        self._received.clear()
        self._doc_codes.clear()

    def _count(self, key: str) -> None:
        self.counters[key] = self.counters.get(key, 0) + 1

    # --- commands and control requests ----------------------------------------------------

    def _command(self, batch: Batch, scan: RawScan, text: str) -> None:
        try:
            cmd = commands.parse(text)
        except commands.CommandError as exc:
            ctx = self.context(scan.source)
            decision = assess("", op=ctx.op, catalog=self.catalog, today=dt.date.min)
            bad = replace(
                decision, input=text, text=text[:64], reason="unknown_format", detail=str(exc)
            )
            self._refuse(batch, scan, ctx, bad)
            return
        params: dict[str, Any] = {"source": scan.source}
        action = {"op": "mode", "doc": "mode", "end": "end", "undo": "undo", "ack": "ack"}[cmd.verb]
        if cmd.verb == "op":
            params["op"] = cmd.value
        elif cmd.verb == "doc":
            params["doc"] = cmd.value
        result = self.control(batch, Control(action, params), scan=scan)
        batch.outcomes.append(
            Outcome(scan, _note_decision(cmd.text), note=str(result.get("message", "")))
        )

    def control(self, batch: Batch, req: Control, scan: RawScan | None = None) -> dict[str, Any]:
        """Apply a control request inside the batch; the reply is sent after the commit."""
        try:
            result = self._apply(batch, req, scan)
        except (ValueError, KeyError, masterdata.MasterDataError) as exc:
            log.warning("%s request refused: %s", req.action, exc)
            result = {"ok": False, "error": str(exc)}
        batch.replies.append((req.reply, result))
        return result

    def _apply(self, batch: Batch, req: Control, scan: RawScan | None) -> dict[str, Any]:
        p = req.params
        source = str(p.get("source") or DEFAULT_SOURCE)
        if req.action == "mode":
            op = p.get("op")
            if op is not None and op not in OPERATIONS:
                raise ValueError(f"unknown operation {op!r}")
            targets = list(self.contexts) if source == DEFAULT_SOURCE else [source]
            for name in targets:
                ctx = self.context(name)
                if op is not None:
                    ctx.op = op
                if "doc" in p:
                    ctx.doc = p["doc"] or None
            self._persist_contexts(batch)
            ctx = self.context(source)
            return {
                "ok": True,
                "source": source,
                **ctx.as_dict(),
                "message": f"{ctx.op} {ctx.doc or ''}".strip(),
            }
        if req.action == "end":
            ctx = self.context(source)
            doc, ctx.doc = ctx.doc, None
            self._persist_contexts(batch)
            report = self._report(batch, doc) if doc else None
            return {"ok": True, "doc": doc, "report": report, "message": f"end {doc or '-'}"}
        if req.action == "undo":
            return self._undo(batch, self.context(source), scan)
        if req.action == "ack":
            ctx = self.context(source)
            held, ctx.held = ctx.held, None
            return {"ok": True, "released": held.reason if held else None, "message": "ack"}
        if req.action == "contexts":
            return {"ok": True, "contexts": {s: c.as_dict() for s, c in self.contexts.items()}}
        if req.action == "master":
            kind = _kind(str(p["kind"]))
            value = masterdata.parse(kind, str(p["data"]), f"{kind} from {p.get('origin', 'api')}")
            blob = self._offer(kind, value)
            if blob:
                batch.named.append(blob)
                log.info(
                    "master data: %s version %d applied (%s)",
                    kind,
                    value.version,
                    p.get("origin", "api"),
                )
            return {"ok": True, "applied": blob is not None, "version": value.version}
        if req.action == "receipt":
            doc = str(p["doc"])
            codes = self._codes_for(doc)
            return {
                "ok": True,
                "doc": doc,
                "codes": codes,
                "text": receipt_text(doc, codes, self.lang),
            }
        if req.action == "quarantine":
            rid = int(p["rid"])
            batch.quarantine.append(rid)
            text = f"stored record {rid} failed authentication; quarantined, not sent"
            log.error("ALERT: %s", text)
            alert = {**self.header(time.time()), "alert": text, "after_seq": batch.head.seq}
            batch.drafts.append(Draft("alert", prepare(alert)))
            self._count("quarantined")
            return {"ok": True, "rid": rid}
        if req.action == "counters":
            return {"ok": True, "counters": dict(self.counters)}
        raise ValueError(f"unknown action {req.action!r}")

    def _undo(self, batch: Batch, ctx: ScanContext, scan: RawScan | None) -> dict[str, Any]:
        if not ctx.last:
            return {"ok": False, "error": "nothing to undo", "message": "nothing to undo"}
        voided = []
        for acc in ctx.last:
            body = self._envelope(
                scan or RawScan("", "api", time.time()), acc.op, acc.doc, acc.decision
            )
            body["fields"]["void_of"] = acc.seq
            self._chain(batch, body)
            if acc.op != "stock_count":
                batch.unmarks.append(acc.mac)
                batch.pending.pop(acc.mac, None)
            if acc.doc:  # the voided code leaves the document's receipt and reconciliation
                if acc.doc in self._doc_codes and acc.decision.text in self._doc_codes[acc.doc]:
                    self._doc_codes[acc.doc].remove(acc.decision.text)
                self._received.get(acc.doc, set()).discard(acc.decision.text)
            voided.append(acc.seq)
        ctx.last = []
        self._count("undone")
        return {"ok": True, "voided": voided, "message": f"undo {voided}"}

    def _received_for(self, doc: str) -> set[str]:
        if doc not in self._received:
            since = time.time() - _REBUILD_WINDOW
            self._received[doc] = set(self._stored_doc_codes(doc, since, op="receive"))
        return self._received[doc]

    def _codes_for(self, doc: str) -> list[str]:
        if doc in self._doc_codes:
            return list(self._doc_codes[doc])
        return self._stored_doc_codes(doc, time.time() - 2 * 86400)

    def _stored_doc_codes(self, doc: str, since: float, op: str | None = None) -> list[str]:
        """The codes recorded under `doc` (and `op`) since then, voided scans taken out."""
        codes: list[str] = []
        for payload in self.store.events_since(since):
            obj = json.loads(payload)
            if obj.get("doc") != doc or (op is not None and obj.get("op") != op):
                continue
            if "void_of" not in obj.get("fields", {}):
                codes.append(obj["code"])
            elif obj["code"] in codes:
                codes.remove(obj["code"])
        return codes

    def _report(self, batch: Batch, doc: str) -> dict[str, Any] | None:
        manifest = self.manifests.get(doc)
        if manifest is None:
            return None
        expected = self._expected_units(manifest)
        received = self._received_for(doc)
        unexpected = self._unexpected.get(doc, set()) - expected
        products: dict[str, dict[str, int]] = {}
        for code in expected:
            products.setdefault(_product(code), {"expected": 0, "received": 0})["expected"] += 1
        for code in received | unexpected:
            products.setdefault(_product(code), {"expected": 0, "received": 0})["received"] += 1
        report: dict[str, Any] = {
            **self.header(time.time()),
            "doc": doc,
            "supplier": manifest.supplier,
            "manifest_version": manifest.version,
            "matched": sorted(received & expected),
            "missing": sorted(expected - received),
            "unexpected": sorted(unexpected | (received - expected)),
            "counts": {
                "expected": len(expected),
                "matched": len(received & expected),
                "missing": len(expected - received),
                "unexpected": len(unexpected | (received - expected)),
            },
            "products": products,
        }
        batch.drafts.append(Draft("report", prepare(report)))
        self._received.pop(doc, None)
        self._unexpected.pop(doc, None)
        self._count("reports")
        return report


def receipt_text(doc: str, codes: list[str], lang: str = "zh") -> str:
    """The trace-code block printed on the customer's receipt."""
    title = "药品追溯码" if lang == "zh" else "Drug trace codes"
    lines = [f"{title} ({doc})", *(f"  {c}" for c in codes)]
    return "\n".join(lines)


def _state_tuple(store: Store, mac: bytes) -> tuple[str | None, int]:
    state = store.code_state(mac)
    return (state.last_op, state.count) if state else (None, 0)


def _product(code: str) -> str:
    return code[:7] if len(code) == 20 and code.isdigit() else code[:16]


def _kind(text: str) -> MasterKind:
    if text not in masterdata.KINDS:
        raise ValueError(f"unknown master data kind {text!r}")
    kinds: dict[str, MasterKind] = {k: k for k in masterdata.KINDS}
    return kinds[text]


def _note_decision(text: str) -> Decision:
    return Decision(text, True, "unknown", "unknown", None, text)


def _local_date(epoch: float) -> dt.date:
    return dt.date.fromtimestamp(epoch)


def _uuid4() -> str:
    """A record id: a random (version 4) UUID."""
    return str(uuid.uuid4())


__all__ = [
    "Accepted",
    "Batch",
    "Control",
    "Draft",
    "Outcome",
    "Pipeline",
    "ScanContext",
    "receipt_text",
]
