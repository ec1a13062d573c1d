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
from agent.rules.masterdata import MasterDataError, kind_of
from agent.rules.operations import OBSERVING
from agent.service.batch import Batch, Outcome
from agent.service.requests import (
    Acknowledge,
    ApplyMasterData,
    ControlRequest,
    Counters,
    EndDocument,
    ListContexts,
    Quarantine,
    RaiseAlert,
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
        case RaiseAlert():
            _alert(p, batch, req.text)
            return {"ok": True}
        case Quarantine():
            return _quarantine(p, batch, req)
        case Counters():
            return {"ok": True, "counters": dict(p.counters)}


def _set_mode(p: Pipeline, batch: Batch, req: SetMode) -> Reply:
    if req.op is not None and req.op not in p.allowed_ops:
        # A printed sheet or an API client must not turn a dispensing counter into, say, a
        # stock count (which skips the 回流 stop): the station's config says what it may do.
        message = f"{req.op} is not allowed at this station ([operation] allowed)"
        log.warning("operation change refused for %r: %s", req.source, message)
        return {"ok": False, "error": message, "message": message}
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
    """Release one stopped scanner, or (`*`) every stopped one."""
    released: dict[str, str | None] = {}
    for source, ctx in p.contexts.named_targets(req.source):
        held, ctx.held = ctx.held, None
        if held is None:
            continue
        released[source] = held.reason
        if req.scan is None:
            # Released from the POS (API) or a shell (`tracescan ack`): the worker at that
            # scanner must see that the line runs again, as after scanning TSC:ACK.
            note = f"released by ack ({held.reason})"
            batch.outcomes.append(Outcome.noted(RawScan("", source, time.time()), note))
    reason = next(iter(released.values()), None)
    message = f"released by ack ({reason})" if released else "ack: nothing to acknowledge"
    return {"ok": True, "released": reason, "released_by_source": released, "message": message}


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
            _, (last_op, count) = p.code_state(batch, acc.decision.identity)
            batch.marks.append(CodeMark(acc.mac, last_op or acc.op, seq, count - 1))
            batch.pending[acc.mac] = (last_op, count - 1) if count > 1 else (None, 0)
        if acc.doc:  # the voided code leaves the document's receipt and reconciliation
            p.documents.voided(acc.doc, acc.decision.text)
        voided.append(acc.seq)
    ctx.last = []
    p.count("undone")
    return {"ok": True, "voided": voided, "message": f"undo {voided}"}


def _apply_master(p: Pipeline, batch: Batch, req: ApplyMasterData) -> Reply:
    value = req.value
    kind = kind_of(value)
    offer = p.masterdata.offer(value, req.source)
    if offer.blob is not None:
        batch.named.append(offer.blob)
        log.info("master data: %s version %d applied (%s)", kind, value.version, req.origin)
    else:
        # Never silent: a set that is not newer is logged with the version in force.
        log.info(
            "master data: %s version %d from %s ignored: version %s is in force",
            kind,
            value.version,
            req.origin,
            offer.current,
        )
    return {"ok": True, "applied": offer.applied, "version": value.version}


def _alert(p: Pipeline, batch: Batch, text: str) -> None:
    """Log an alert and publish it as a signed `alert` record in this batch."""
    log.error("ALERT: %s", text)
    batch.add("alert", alert_body(p.origin, time.time(), text, batch.head.seq))
    p.count("alerts")


def _quarantine(p: Pipeline, batch: Batch, req: Quarantine) -> Reply:
    batch.quarantine.append(req.rid)
    _alert(p, batch, f"stored record {req.rid} failed authentication; quarantined, not sent")
    p.count("quarantined")
    return {"ok": True, "rid": req.rid}
