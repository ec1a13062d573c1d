"""Typed control requests for the writer thread, one dataclass per action.

Command barcodes, the local API, the CLI (through the API) and MQTT master data all change
the agent's state through these; the writer thread applies each inside the batch it commits
and resolves `reply` after the commit (or with an error when the commit failed). Requests are
built only from validated values: a bad field is refused where it enters (the local API, the
command parser, the uplink), never inside the writer.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol

from agent.rules.masterdata import MasterSet, MasterSource
from agent.rules.operations import Operation
from drivers import RawScan

#: A request's answer: JSON-shaped, as the local API sends it back.
Reply = dict[str, Any]

#: The source name that stands for every scanner (a request without `source`).
ALL_SOURCES = "*"


def _reply() -> Future[Reply]:
    return Future()


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """What every control request carries: the future its reply is delivered through."""

    reply: Future[Reply] = field(default_factory=_reply, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class SetMode(Request):
    """Set the operation and/or the document of one scanner (or of all, `ALL_SOURCES`)."""

    source: str = ALL_SOURCES
    op: Operation | None = None  # None keeps the operation in force
    doc: str | None = None  # None keeps the document, "" closes it without a report


@dataclass(frozen=True, slots=True, kw_only=True)
class EndDocument(Request):
    """Close a scanner's document; a receiving document with a manifest is reconciled."""

    source: str = ALL_SOURCES


@dataclass(frozen=True, slots=True, kw_only=True)
class Undo(Request):
    """Void the scanner's last accepted scan (a signed void event; nothing is deleted)."""

    source: str = ALL_SOURCES
    scan: RawScan | None = None  # the command barcode's scan, when undo was scanned


@dataclass(frozen=True, slots=True, kw_only=True)
class Acknowledge(Request):
    """Release a scanner stopped by an alert."""

    source: str = ALL_SOURCES
    scan: RawScan | None = None  # the command barcode's scan, when TSC:ACK was scanned


@dataclass(frozen=True, slots=True, kw_only=True)
class ListContexts(Request):
    """Every scanner's operation, document and held alert."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplyMasterData(Request):
    """A master-data set, parsed and verified where it came in, to apply when newer than the
    one in force from the same source."""

    value: MasterSet
    source: MasterSource = "central"
    origin: str = "mqtt"


@dataclass(frozen=True, slots=True, kw_only=True)
class RaiseAlert(Request):
    """Something outside a scan went wrong (a refused message, a clock step): log and publish."""

    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Quarantine(Request):
    """A stored row failed authentication: take it out of the unsent set and raise an alert."""

    rid: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Counters(Request):
    """The writer's live counters (accepted, refused by reason, ...)."""


ControlRequest = (
    SetMode
    | EndDocument
    | Undo
    | Acknowledge
    | ListContexts
    | ApplyMasterData
    | RaiseAlert
    | Quarantine
    | Counters
)


class ControlPort(Protocol):
    """What the local API (and anything else outside the writer) may ask of the agent."""

    def request(self, req: ControlRequest, timeout: float = 5.0) -> Reply:
        """Run `req` on the writer thread and wait for its committed reply."""

    def submit(self, scan: RawScan) -> None:
        """Hand a scan to the writer as if a scanner had read it."""
