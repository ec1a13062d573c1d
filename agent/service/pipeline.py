"""One scan's decision with everything the regime requires, batched for one transaction.

The writer thread feeds scans and control requests through `Pipeline`; each scan is decided
in order against its scanner's context (operation, document), the stateless recognition and
level guard, the double-read window, the blocklist, per-code custody state (a unit sold twice
is a 回流 signal), aggregation (a case at receiving stands for its children) and the
receiving document's manifest. Everything a batch produces is committed in one transaction.

Case codes at receive/dispatch are recorded as **one event per child unit** (with the case in
`fields.parent`): every unit then has its own seq, custody state and upload line, exactly as
if it had been scanned, and downstream systems need no second event shape.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import replace

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.config import Config
from agent.records.bodies import Origin, reject_body, scan_body
from agent.records.signing import sign_all, sign_reject
from agent.rules import commands
from agent.rules.aggregation import TooManyUnits
from agent.rules.catalog import Catalog
from agent.rules.custody import Refusal, custody
from agent.rules.decision import Decision, assess
from agent.rules.double_reads import DoubleReadFilter
from agent.rules.masterdata import Bounds
from agent.rules.operations import (
    AGGREGATING,
    DEFAULT_OPERATION,
    DISPENSING,
    OBSERVING,
    Operation,
    counts_as_repeat,
    is_operation,
)
from agent.service.batch import Accepted, Batch, Outcome
from agent.service.clock import TrustedTime
from agent.service.contexts import BLOB_NAME, Contexts, ScanContext
from agent.service.control import apply
from agent.service.documents import Documents
from agent.service.masterdata import BLOB_PREFIX, MasterData
from agent.service.requests import (
    Acknowledge,
    ControlRequest,
    EndDocument,
    Reply,
    SetMode,
    Undo,
)
from agent.store import CodeMark, NewRecord, Store
from drivers import RawScan

log = logging.getLogger(__name__)

_PACKS: frozenset[str] = frozenset({"middle", "case", "pallet"})


class Pipeline:
    """The decision state of a running agent; used only from the writer thread."""

    def __init__(
        self, config: Config, store: Store, signing: Ed25519PrivateKey, catalog: Catalog
    ) -> None:
        self.store = store
        self.signing = signing
        self.origin = Origin(config.device.id, config.device.site)
        self.lang = config.device.lang
        self.policy = config.policy
        #: operations command barcodes and the API may switch a scanner to
        self.allowed_ops: frozenset[str] = frozenset(config.operation.allowed)
        self.double_reads = DoubleReadFilter(config.policy.double_read_window)
        self.masterdata = MasterData(
            catalog,
            Bounds(config.masterdata.max_bytes, config.policy.max_case_units),
        )
        mode = config.operation.mode
        self.contexts = Contexts(
            mode if is_operation(mode) else DEFAULT_OPERATION, config.operation.doc
        )
        self.documents = Documents(store.events_since)
        self.clock = TrustedTime(time.time(), time.monotonic(), store.newest_created())
        self.counters: dict[str, int] = {}
        self.masterdata.restore(store.named_like(BLOB_PREFIX))
        saved = store.named(BLOB_NAME)
        if saved is not None:
            self.contexts.restore(saved)

    # --- one batch -------------------------------------------------------------------------

    def new_batch(self) -> Batch:
        """An empty batch continuing the chain."""
        return Batch(head=self.store.head)

    def sign(self, batch: Batch) -> list[NewRecord]:
        """The batch's records, signed all at once (see `sign_all`): what to commit, in order.

        The chain hashes the bytes without `sig`, so every head was settled while deciding
        and no decision waits for a signature.
        """
        payloads = sign_all([d.unsigned for d in batch.drafts], self.signing)
        return [NewRecord(d.topic, p, d.seq) for d, p in zip(batch.drafts, payloads, strict=True)]

    def scan(self, batch: Batch, scan: RawScan) -> None:
        """Decide one scan into the batch."""
        text = scan.text.strip()
        if commands.is_command(text):
            self._command(batch, scan, text)
            return
        ctx = self.contexts.get(scan.source)
        # The scan's local date for expiry, at the trusted time: a clock stepped back does not
        # make an expired pack valid.
        today = dt.date.fromtimestamp(self.clock.trusted(scan.received_at))
        decision = assess(scan.text, op=ctx.op, catalog=self.masterdata.catalog, today=today)
        if self.double_reads.repeat(scan.source, decision.identity, scan.mono):
            self.count("duplicate_scan")
            batch.outcomes.append(
                Outcome(scan, decision.refused("duplicate_scan"), note="duplicate_scan")
            )
            return
        if ctx.held is not None:
            refused = replace(decision, accepted=False, reason="awaiting_ack", variant=None)
            self.refuse(batch, scan, ctx, refused)
            return
        if not decision.accepted:
            needs_ack = decision.reason == "level_not_allowed"
            self.refuse(batch, scan, ctx, decision, needs_ack=needs_ack)
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
            self.refuse(batch, scan, ctx, refused, needs_ack=refusal.needs_ack)
            return
        ctx.last = []
        for unit in units:
            self._accept(batch, scan, ctx, unit)
        if len(units) > 1:
            self.count("case_expanded")

    def _stateful(
        self, batch: Batch, ctx: ScanContext, decision: Decision
    ) -> tuple[Refusal | None, list[Decision]]:
        """Blocklist, aggregation, custody and manifest: the refusal, or the units to record."""
        md = self.masterdata
        block = md.blocked(decision)
        if block is not None:
            return Refusal("blocked", None, needs_ack=True, detail=block.reason), []
        units = [decision]
        is_parent = md.is_parent(decision.text, ctx.doc)
        if ctx.op in DISPENSING and is_parent:
            return Refusal("level_not_allowed", None, needs_ack=True), []
        if decision.level in _PACKS or is_parent:
            try:
                children = md.expand(decision.text, ctx.doc)
            except TooManyUnits:
                return Refusal(
                    "no_aggregation", "too_large", detail=str(md.bounds.max_case_units)
                ), []
            if children is None:
                if ctx.op in AGGREGATING:
                    return Refusal("no_aggregation"), []
            else:
                units = [self._child(decision, code) for code in children]
        for unit in units:
            refusal = self._custody(batch, ctx.op, unit)
            if refusal is not None:
                return refusal, []
        manifest = md.manifest(ctx.doc) if ctx.op == "receive" else None
        if manifest is not None:
            expected = md.expected_units(manifest)
            strays = [u.text for u in units if u.text not in expected]
            if strays:
                self.documents.strayed(manifest.doc, strays)
                if self.policy.manifest_mode == "refuse":
                    return Refusal("not_in_manifest", detail=manifest.doc), []
                units = [replace(u, fields={**u.fields, "manifest": "unexpected"}) for u in units]
        return None, units

    def _child(self, parent: Decision, code: str) -> Decision:
        child = assess(code, op="receive", catalog=self.masterdata.catalog, today=dt.date.min)
        fields = {**child.fields, "parent": parent.text}
        return replace(child, accepted=True, reason=None, fields=fields, input=code)

    def _custody(self, batch: Batch, op: Operation, unit: Decision) -> Refusal | None:
        _, (last_op, count) = self.code_state(batch, unit.identity)
        entry = self.masterdata.catalog.entry_for(unit.kind, unit.fields)
        return custody(op, last_op, count, parts=entry.parts if entry else 1)

    def code_state(self, batch: Batch, code: str) -> tuple[bytes, tuple[Operation | None, int]]:
        """The pack's keyed hash and custody state as this batch sees it (one lookup each);
        `code` is the pack's identity (`Decision.identity`)."""
        mac = batch.macs.get(code)
        if mac is None:
            mac = batch.macs[code] = self.store.mac(code)
        state = batch.pending.get(mac)
        if state is None:
            stored = self.store.code_state(mac)
            last = stored.last_op if stored is not None else None
            # A stored operation this build does not know counts as no custody seen here.
            state = (last, stored.count) if is_operation(last) and stored else (None, 0)
            batch.pending[mac] = state
        return mac, state

    def _accept(self, batch: Batch, scan: RawScan, ctx: ScanContext, unit: Decision) -> None:
        seq = batch.chain(scan_body(self.origin, scan.received_at, ctx.op, ctx.doc, unit))
        mac, (last_op, count) = self.code_state(batch, unit.identity)
        if ctx.op != OBSERVING:  # a count observes; it changes no custody
            count = count + 1 if counts_as_repeat(last_op, ctx.op) else 1
            batch.marks.append(CodeMark(mac, ctx.op, seq, count))
            batch.pending[mac] = (ctx.op, count)
        ctx.last.append(Accepted(seq, unit, ctx.op, ctx.doc, mac))
        if ctx.doc and self.masterdata.manifest(ctx.doc) is not None:
            self.documents.recorded(ctx.doc, ctx.op, unit.text)
        self.count(f"accepted.{ctx.op}")
        batch.outcomes.append(Outcome(scan, unit, seq))

    def refuse(
        self,
        batch: Batch,
        scan: RawScan,
        ctx: ScanContext,
        decision: Decision,
        *,
        needs_ack: bool = False,
    ) -> None:
        """Record a refused scan (a reject record) and stop the line when it needs an ack."""
        batch.add(
            "reject",
            reject_body(self.origin, scan.received_at, ctx.op, ctx.doc, decision, lang=self.lang),
        )
        self.count(f"refused.{decision.reason}")
        note = None
        if needs_ack and self.policy.stop_the_line:
            ctx.held = decision
            note = "held"
        batch.outcomes.append(Outcome(scan, decision, None, note=note))

    def reject_record(self, scan: RawScan, decision: Decision) -> NewRecord:
        """The signed reject record for a scan refused outside a batch (storage failures)."""
        ctx = self.contexts.get(scan.source)
        body = reject_body(self.origin, scan.received_at, ctx.op, ctx.doc, decision, lang=self.lang)
        return NewRecord("reject", sign_reject(body, self.signing))

    def forget(self, batch: Batch) -> None:
        """Undo the in-memory effects of a batch whose commit failed.

        The scans were refused (`buffer_full`), so a rescan must not be absorbed as a double
        read, undo must not point at numbers never committed, and per-document caches are
        rebuilt from the store when next needed.
        """
        for out in batch.outcomes:
            self.double_reads.forget(out.scan.source, out.decision.identity)
        self.contexts.forget_after(self.store.head.seq)
        self.documents.forget()

    def startup_alerts(self) -> list[str]:
        """What went wrong while the state was read back: sets set aside, a clock behind."""
        alerts = list(self.masterdata.alerts)
        if self.clock.at_start is not None:
            alerts.append(
                f"at start, the newest stored record is {-self.clock.at_start.seconds:.0f} s"
                " ahead of the wall clock: " + self.clock.at_start.describe()
            )
        return alerts

    def count(self, key: str) -> None:
        """Add one to a live counter."""
        self.counters[key] = self.counters.get(key, 0) + 1

    # --- command barcodes ------------------------------------------------------------------

    def _command(self, batch: Batch, scan: RawScan, text: str) -> None:
        try:
            cmd = commands.parse(text)
        except commands.CommandError as exc:
            ctx = self.contexts.get(scan.source)
            decision = assess("", op=ctx.op, catalog=self.masterdata.catalog, today=dt.date.min)
            bad = replace(
                decision, input=text, text=text[:64], reason="unknown_format", detail=str(exc)
            )
            self.refuse(batch, scan, ctx, bad)
            return
        result = apply(self, batch, self._command_request(cmd, scan))
        batch.outcomes.append(Outcome.noted(scan, str(result.get("message", "")), cmd.text))

    @staticmethod
    def _command_request(cmd: commands.Command, scan: RawScan) -> ControlRequest:
        source = scan.source
        if cmd.verb == "op":
            return SetMode(source=source, op=cmd.value if is_operation(cmd.value) else None)
        if cmd.verb == "doc":
            return SetMode(source=source, doc=cmd.value)
        if cmd.verb == "end":
            return EndDocument(source=source)
        if cmd.verb == "undo":
            return Undo(source=source, scan=scan)
        return Acknowledge(source=source, scan=scan)


__all__ = ["Pipeline", "Reply"]
