"""What is known per document: for a receiving document with a manifest, what was received
and what strayed (the writer's, for reconciliation); and the codes recorded under any
document (the customer's receipt, read from the store off the writer thread).

Everything here can be rebuilt from the stored events, so a restart or a failed commit only
costs a re-read of the recent events, never a wrong receipt or reconciliation.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Final

from agent.rules.manifest import Reconciliation, reconcile
from agent.rules.operations import Operation
from agent.store import Sealer
from agent.store.audit import read_records

#: How far back a receiving document's codes are re-read after a restart.
_RECEIVE_WINDOW: Final = 30 * 86400.0
#: How far back a receipt's codes are re-read after a restart.
_RECEIPT_WINDOW: Final = 2 * 86400.0

#: Decrypted event payloads stored since a time (the store's `events_since`).
StoredEvents = Callable[[float], list[bytes]]


def codes_recorded(payloads: Iterable[bytes], doc: str, op: Operation | None = None) -> list[str]:
    """The codes recorded under `doc` (and `op`) in these event payloads, in order, voided
    scans taken out."""
    codes: list[str] = []
    for payload in payloads:
        obj = json.loads(payload)
        if obj.get("doc") != doc or (op is not None and obj.get("op") != op):
            continue
        if "void_of" not in obj.get("fields", {}):
            codes.append(obj["code"])
        elif obj["code"] in codes:
            codes.remove(obj["code"])
    return codes


class ReceiptReader:
    """The codes of a document for its receipt, read from the store with a read-only
    connection of their own — never on the writer thread, one receipt at a time."""

    def __init__(self, data_dir: Path, sealer: Sealer, window: float = _RECEIPT_WINDOW) -> None:
        self.data_dir = data_dir
        self.sealer = sealer
        self.window = window
        self._lock = threading.Lock()

    def codes(self, doc: str) -> list[str]:
        """The codes recorded under `doc` in the receipt window, voided ones taken out."""
        with self._lock:
            since = time.time() - self.window
            events = (
                r.payload
                for r in read_records(self.data_dir, self.sealer, since)
                if not isinstance(r, str) and r.topic == "event"
            )
            return codes_recorded(events, doc)


class Documents:
    """Per-document state for reconciliation. Used only from the writer thread."""

    def __init__(self, stored_events: StoredEvents) -> None:
        self._stored_events = stored_events
        self._received: dict[str, set[str]] = {}
        self._strays: dict[str, set[str]] = {}

    def recorded(self, doc: str, op: Operation, code: str) -> None:
        """An accepted unit under a receiving document that has a manifest."""
        if op == "receive":
            self.received(doc).add(code)

    def voided(self, doc: str, code: str) -> None:
        """An undone scan leaves the document's reconciliation."""
        self._received.get(doc, set()).discard(code)

    def strayed(self, doc: str, codes: Iterable[str]) -> None:
        """Units scanned under `doc` that its manifest does not list."""
        self._strays.setdefault(doc, set()).update(codes)

    def received(self, doc: str) -> set[str]:
        """The units received under a receiving document (re-read from the store once)."""
        got = self._received.get(doc)
        if got is None:
            since = time.time() - _RECEIVE_WINDOW
            stored = self._stored_events(since)
            got = self._received[doc] = set(codes_recorded(stored, doc, op="receive"))
        return got

    def close(self, doc: str, expected: frozenset[str]) -> Reconciliation:
        """Reconcile a receiving document against the units expected, and forget it."""
        result = reconcile(expected, self.received(doc), self._strays.get(doc, ()))
        self._received.pop(doc, None)
        self._strays.pop(doc, None)
        return result

    def forget(self) -> None:
        """Drop what a failed commit may have left wrong; it is re-read when next needed."""
        self._received.clear()
