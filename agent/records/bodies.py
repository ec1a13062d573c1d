"""Every record body the device publishes, built in one place.

Events (accepted scans, their voids), rejects, alerts, reconciliation reports and the retained
status message all start with the same header; the signed ones are serialised by
`agent.records.envelope` and signed by `agent.records.signing`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from agent.records.envelope import rfc3339
from agent.rules.decision import Decision
from agent.rules.operations import BILL_TYPES, Operation


@dataclass(frozen=True, slots=True)
class Origin:
    """Who publishes: the device and its site, as every record names them."""

    device: str
    site: str


def record_id() -> str:
    """A record id: a random (version 4) UUID."""
    return str(uuid.uuid4())


def header(origin: Origin, at: float) -> dict[str, Any]:
    """The members every record starts with: version, id, device, site, time."""
    return {
        "v": 1,
        "id": record_id(),
        "device": origin.device,
        "site": origin.site,
        "ts": rfc3339(at),
    }


def scan_body(
    origin: Origin, at: float, op: Operation, doc: str | None, decision: Decision
) -> dict[str, Any]:
    """The body of one scan's record (an event once chained, or a reject's base)."""
    return {
        **header(origin, at),
        "op": op,
        "code": decision.text,
        "kind": decision.kind,
        "level": decision.level,
        "fields": {**decision.fields, "bill_type": BILL_TYPES[op]},
        "doc": doc,
    }


def void_body(
    origin: Origin, at: float, op: Operation, doc: str | None, decision: Decision, *, void_of: int
) -> dict[str, Any]:
    """An event that withdraws the accepted event `void_of` (nothing is ever deleted)."""
    body = scan_body(origin, at, op, doc, decision)
    body["fields"]["void_of"] = void_of
    return body


def reject_body(
    origin: Origin, at: float, op: Operation, doc: str | None, decision: Decision, *, lang: str
) -> dict[str, Any]:
    """A refused scan: the scan's body with the reason and the worker's message (no seq)."""
    body = scan_body(origin, at, op, doc, decision)
    body["reason"] = decision.reason
    body["message"] = decision.message(lang)
    return body


def alert_body(origin: Origin, at: float, text: str, after_seq: int) -> dict[str, Any]:
    """Something went wrong outside a scan (tampering, quarantine, a new store)."""
    return {**header(origin, at), "alert": text, "after_seq": after_seq}


def report_body(
    origin: Origin,
    at: float,
    *,
    doc: str,
    supplier: str,
    manifest_version: int,
    reconciliation: dict[str, Any],
) -> dict[str, Any]:
    """A closed receiving document reconciled with its manifest."""
    return {
        **header(origin, at),
        "doc": doc,
        "supplier": supplier,
        "manifest_version": manifest_version,
        **reconciliation,
    }


def status_body(
    origin: Origin, at: float, *, buffer_depth: int, oldest_unsent_s: float
) -> dict[str, Any]:
    """The retained `online` status message (not signed; its last will says `online: false`)."""
    return {
        "online": True,
        "device": origin.device,
        "site": origin.site,
        "ts": rfc3339(at),
        "buffer_depth": buffer_depth,
        "oldest_unsent_s": oldest_unsent_s,
    }


#: The status payload when the device goes away (last will and clean shutdown).
OFFLINE_STATUS = b'{"online":false}'
