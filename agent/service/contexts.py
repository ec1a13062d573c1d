"""Each scanner's context: the operation and document in force, and a held alert.

Contexts survive restarts (persisted, sealed, in the store); a persisted context that does not
validate is set aside with a log line instead of being trusted.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any, Final, TypeGuard

from agent.rules.decision import Decision
from agent.rules.limits import LimitError, load_json
from agent.rules.operations import Operation, is_operation
from agent.service.batch import Accepted
from agent.service.requests import ALL_SOURCES
from agent.store import NamedBlob
from drivers import RawScan

log = logging.getLogger(__name__)

#: The store's name for the persisted contexts.
BLOB_NAME: Final = "context"
_MAX_DOC: Final = 64


def valid_doc(value: object) -> TypeGuard[str]:
    """A document id: 1–64 printable characters (what a command barcode can carry)."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= _MAX_DOC
        and value.isprintable()
        and not value.isspace()
    )


@dataclass(slots=True)
class ScanContext:
    """One scanner's operation and document, and whether it waits for an acknowledgement."""

    op: Operation
    doc: str | None = None
    held: Decision | None = None
    last: list[Accepted] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """For the API and persistence."""
        return {"op": self.op, "doc": self.doc, "held": self.held.reason if self.held else None}


class Contexts:
    """The contexts of every scanner seen, and the default (`ALL_SOURCES`) new ones start from."""

    def __init__(self, op: Operation, doc: str | None) -> None:
        self._all: dict[str, ScanContext] = {ALL_SOURCES: ScanContext(op, doc)}

    @property
    def default(self) -> ScanContext:
        """The context new scanners start from."""
        return self._all[ALL_SOURCES]

    def get(self, source: str) -> ScanContext:
        """The scanner's context (created from the default on first use)."""
        ctx = self._all.get(source)
        if ctx is None:
            ctx = self._all[source] = ScanContext(self.default.op, self.default.doc)
        return ctx

    def find(self, source: str) -> ScanContext | None:
        """The scanner's context if it has one."""
        return self._all.get(source)

    def targets(self, source: str) -> list[ScanContext]:
        """The contexts a request for `source` changes (every one for `ALL_SOURCES`)."""
        return [ctx for _, ctx in self.named_targets(source)]

    def named_targets(self, source: str) -> list[tuple[str, ScanContext]]:
        """`targets` with their names."""
        if source == ALL_SOURCES:
            return list(self._all.items())
        return [(source, self.get(source))]

    def held(self, scan: RawScan, decision: Decision) -> bool:
        """Whether `decision` is the refusal that stopped its scanner (writer thread only)."""
        ctx = self._all.get(scan.source)
        return ctx is not None and ctx.held is decision

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Every context as plain data (the API's `contexts`)."""
        return {s: c.as_dict() for s, c in self._all.items()}

    def forget_after(self, seq: int) -> None:
        """Drop undo entries for numbers above `seq` (a batch whose commit failed)."""
        for ctx in self._all.values():
            ctx.last = [a for a in ctx.last if a.seq <= seq]

    def blob(self) -> NamedBlob:
        """The contexts as persisted (operation and document; held alerts are not kept)."""
        data = {s: {"op": c.op, "doc": c.doc} for s, c in self._all.items()}
        return NamedBlob(BLOB_NAME, 0, json.dumps(data, sort_keys=True).encode())

    def restore(self, blob: NamedBlob) -> None:
        """Take the persisted contexts back; what does not validate is logged and skipped."""
        try:
            saved = load_json(blob.data)
        except LimitError as exc:
            log.error(
                "persisted scanner contexts are unreadable (%s); starting from the config", exc
            )
            return
        if not isinstance(saved, dict):
            log.error("persisted scanner contexts are malformed; starting from the config")
            return
        for source, ctx in saved.items():
            op = ctx.get("op") if isinstance(ctx, dict) else None
            doc = ctx.get("doc") if isinstance(ctx, dict) else None
            if not is_operation(op) or not (doc is None or valid_doc(doc)):
                log.error("persisted context of scanner %r is malformed; set aside", source)
                continue
            self._all[str(source)] = ScanContext(op, doc)
