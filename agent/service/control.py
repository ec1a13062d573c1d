"""Control requests applied inside the writer's batch, one handler per request type.

Every handler changes the pipeline's state and adds what must be committed to the batch; the
reply is delivered after the commit. Requests arrive validated (see `agent.service.requests`);
what can still go wrong here (a master-data document that does not parse) becomes an error
reply, never an exception out of the writer.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from agent.records.bodies import alert_body, report_body, void_body
from agent.rules.masterdata import MasterDataError, parse
from agent.rules.operations import OBSERVING
from agent.rules.receipt import receipt_text
from agent.service.batch import Batch, Outcome
from agent.service.requests import (
    Acknowledge,
    ApplyMasterData,
    ControlRequest,
    Counters,
    EndDocument,
    ListContexts,
    Quarantine,
    Receipt,
    Reply,
    SetMode,
    Undo,
)
from agent.store import CodeMark
from drivers import RawScan

if TYPE_CHECKING:
    from agent.service.pipeline import Pipeline

log = logging.getLogger(__name__)


def apply(pipeline: Pipeline, batch: Batch, req: ControlRequest) -> Reply:
    """Apply `req` inside `batch`; its reply is queued for delivery after the commit."""
    try:
        result = _dispatch(pipeline, batch, req)
    except (ValueError, KeyError, MasterDataError) as exc:
        log.warning("%s request refused: %s", type(req).__name__, exc)
        result = {"ok": False, "error": str(exc)}
    batch.replies.append((req.reply, result))
    return result


def _dispatch(p: Pipeline, batch: Batch, req: ControlRequest) -> Reply:
    match req:
        case SetMode():
            return _set_mode(p, batch, req)
        case EndDocument():
            return _end_document(p, batch, req)
        case Undo():
            return _undo(p, batch, req)
        case Acknowledge():
            return _acknowledge(p, batch, req)
        case ListContexts():
            return {"ok": True, "contexts": p.contexts.snapshot()}
        case ApplyMasterData():
            return _apply_master(p, batch, req)
        case Receipt():
            codes = p.documents.receipt_codes(req.doc)
            text = receipt_text(req.doc, codes, p.lang)
            return {"ok": True, "doc": req.doc, "codes": codes, "text": text}
        case Quarantine():
            return _quarantine(p, batch, req)
        case Counters():
            return {"ok": True, "counters": dict(p.counters)}


def _set_mode(p: Pipeline, batch: Batch, req: SetMode) -> Reply:
    for ctx in p.contexts.targets(req.source):
        if req.op is not None:
            ctx.op = req.op
        if req.doc is not None:
            ctx.doc = req.doc or None
    batch.named.append(p.contexts.blob())
    ctx = p.contexts.get(req.source)
    message = f"{ctx.op} {ctx.doc or ''}".strip()
    return {"ok": True, "source": req.source, **ctx.as_dict(), "message": message}


def _acknowledge(p: Pipeline, batch: Batch, req: Acknowledge) -> Reply:
    ctx = p.contexts.get(req.source)
    held, ctx.held = ctx.held, None
    reason = held.reason if held else None
    message = f"released by ack ({reason})" if held else "ack: nothing to acknowledge"
    if held is not None and req.scan is None:
        # Released from the POS (API) or a shell (`tracescan ack`): the worker at that scanner
        # must see that the line runs again, as after scanning TSC:ACK.
        batch.outcomes.append(Outcome.noted(RawScan("", req.source, time.time()), message))
    return {"ok": True, "released": reason, "message": message}


def _end_document(p: Pipeline, batch: Batch, req: EndDocument) -> Reply:
    ctx = p.contexts.get(req.source)
    doc, ctx.doc = ctx.doc, None
    batch.named.append(p.contexts.blob())
    report = _reconcile(p, batch, doc) if doc else None
    return {"ok": True, "doc": doc, "report": report, "message": f"end {doc or '-'}"}


def _reconcile(p: Pipeline, batch: Batch, doc: str) -> Reply | None:
    """The reconciliation report of a closed receiving document with a manifest."""
    manifest = p.masterdata.manifest(doc)
    if manifest is None:
        return None
    expected = p.masterdata.expected_units(manifest)
    result = p.documents.close(doc, expected)
    report = report_body(
        p.origin,
        time.time(),
        doc=doc,
        supplier=manifest.supplier,
        manifest_version=manifest.version,
        reconciliation=result.as_fields(len(expected)),
    )
    batch.add("report", report)
    p.count("reports")
    return report


def _undo(p: Pipeline, batch: Batch, req: Undo) -> Reply:
    ctx = p.contexts.get(req.source)
    if not ctx.last:
        return {"ok": False, "error": "nothing to undo", "message": "nothing to undo"}
    at = req.scan.received_at if req.scan is not None else time.time()
    voided = []
    for acc in ctx.last:
        seq = batch.chain(void_body(p.origin, at, acc.op, acc.doc, acc.decision, void_of=acc.seq))
        if acc.op != OBSERVING:  # the code's count steps back; at zero it is forgotten
            _, (last_op, count) = p.code_state(batch, acc.decision.text)
            batch.marks.append(CodeMark(acc.mac, last_op or acc.op, seq, count - 1))
            batch.pending[acc.mac] = (last_op, count - 1) if count > 1 else (None, 0)
        if acc.doc:  # the voided code leaves the document's receipt and reconciliation
            p.documents.voided(acc.doc, acc.decision.text)
        voided.append(acc.seq)
    ctx.last = []
    p.count("undone")
    return {"ok": True, "voided": voided, "message": f"undo {voided}"}


def _apply_master(p: Pipeline, batch: Batch, req: ApplyMasterData) -> Reply:
    value = parse(req.kind, req.data, f"{req.kind} from {req.origin}")
    blob = p.masterdata.offer(value)
    if blob is not None:
        batch.named.append(blob)
        log.info("master data: %s version %d applied (%s)", req.kind, value.version, req.origin)
    return {"ok": True, "applied": blob is not None, "version": value.version}


def _quarantine(p: Pipeline, batch: Batch, req: Quarantine) -> Reply:
    batch.quarantine.append(req.rid)
    text = f"stored record {req.rid} failed authentication; quarantined, not sent"
    log.error("ALERT: %s", text)
    batch.add("alert", alert_body(p.origin, time.time(), text, batch.head.seq))
    p.count("quarantined")
    return {"ok": True, "rid": req.rid}
