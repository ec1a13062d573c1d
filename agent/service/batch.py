"""What one transaction writes, and what the worker is told once it is committed."""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from agent.records.envelope import ChainHead, Unsigned, chain_head, prepare
from agent.rules.decision import Decision
from agent.rules.operations import Operation
from agent.service.requests import Reply
from agent.store import CodeMark, NamedBlob, Topic
from drivers import RawScan


@dataclass(frozen=True, slots=True)
class Accepted:
    """What undo needs to void one accepted event."""

    seq: int
    decision: Decision
    op: Operation
    doc: str | None
    mac: bytes


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one scan ended, for worker feedback (after the commit)."""

    scan: RawScan
    decision: Decision
    seq: int | None = None
    note: str | None = None  # a non-scan message (command applied, double read absorbed)

    @classmethod
    def noted(cls, scan: RawScan, note: str, text: str | None = None) -> Outcome:
        """A note to the worker at `scan`'s scanner (a command applied), not a decision.

        `text` is what was read (a command barcode's text), when it differs from `scan.text`.
        """
        read = scan.text if text is None else text
        return cls(scan, Decision(read, True, "unknown", "unknown", None, read), note=note)


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
    named: list[NamedBlob] = field(default_factory=list)
    acked: list[int] = field(default_factory=list)
    published: list[int] = field(default_factory=list)  # waiting for central's acknowledgement
    confirmed_through: int | None = None  # central's latest `through` in this batch
    outcomes: list[Outcome] = field(default_factory=list)
    replies: list[tuple[Future[Reply], Reply]] = field(default_factory=list)
    #: code state as this batch sees it: keyed hash -> (last custody op, count)
    pending: dict[bytes, tuple[Operation | None, int]] = field(default_factory=dict)
    macs: dict[str, bytes] = field(default_factory=dict)
    quarantine: list[int] = field(default_factory=list)

    def chain(self, body: dict[str, Any]) -> int:
        """Append an event body to the batch's chain (setting `seq` and `prev`); its seq."""
        body["seq"] = seq = self.head.seq + 1
        body["prev"] = self.head.hash
        unsigned = prepare(body)
        self.head = chain_head(body, unsigned)
        self.drafts.append(Draft("event", unsigned, seq))
        return seq

    def add(self, topic: Topic, body: dict[str, Any]) -> None:
        """Append a record outside the chain (reject, alert, report)."""
        self.drafts.append(Draft(topic, prepare(body)))
