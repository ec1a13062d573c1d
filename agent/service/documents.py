"""What the writer remembers per document: the codes recorded under it (the customer's
receipt) and, for a receiving document with a manifest, what was received and what strayed.

Everything here can be rebuilt from the stored events, so a restart or a failed commit only
costs a re-read of the recent events, never a wrong receipt or reconciliation.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Final

from agent.rules.manifest import Reconciliation, reconcile
from agent.rules.operations import Operation

#: Documents whose codes are kept in memory for receipts (older ones are re-read on demand).
_RECENT_DOCS: Final = 256
#: How far back a receiving document's codes are re-read after a restart.
_RECEIVE_WINDOW: Final = 30 * 86400.0
#: How far back a receipt's codes are re-read after a restart.
_RECEIPT_WINDOW: Final = 2 * 86400.0

#: Decrypted event payloads stored since a time (the store's `events_since`).
StoredEvents = Callable[[float], list[bytes]]


class Documents:
    """Per-document codes for receipts and reconciliation. Used only from the writer thread."""

    def __init__(self, stored_events: StoredEvents) -> None:
        self._stored_events = stored_events
        self._received: dict[str, set[str]] = {}
        self._strays: dict[str, set[str]] = {}
        self._codes: OrderedDict[str, list[str]] = OrderedDict()

    def recorded(self, doc: str, op: Operation, code: str, *, reconciled: bool) -> None:
        """An accepted unit under `doc` (`reconciled`: a receiving document with a manifest)."""
        if reconciled and op == "receive":
            self.received(doc).add(code)
        codes = self._codes.setdefault(doc, [])
        codes.append(code)
        self._codes.move_to_end(doc)
        while len(self._codes) > _RECENT_DOCS:
            self._codes.popitem(last=False)

    def voided(self, doc: str, code: str) -> None:
        """An undone scan leaves the document's receipt and reconciliation."""
        codes = self._codes.get(doc)
        if codes is not None and code in codes:
            codes.remove(code)
        self._received.get(doc, set()).discard(code)

    def strayed(self, doc: str, codes: Iterable[str]) -> None:
        """Units scanned under `doc` that its manifest does not list."""
        self._strays.setdefault(doc, set()).update(codes)

    def received(self, doc: str) -> set[str]:
        """The units received under a receiving document (re-read from the store once)."""
        got = self._received.get(doc)
        if got is None:
            since = time.time() - _RECEIVE_WINDOW
            got = self._received[doc] = set(self._stored_codes(doc, since, op="receive"))
        return got

    def receipt_codes(self, doc: str) -> list[str]:
        """The codes recorded under `doc`, in order, voided ones taken out."""
        if doc in self._codes:
            return list(self._codes[doc])
        return self._stored_codes(doc, time.time() - _RECEIPT_WINDOW)

    def close(self, doc: str, expected: frozenset[str]) -> Reconciliation:
        """Reconcile a receiving document against the units expected, and forget it."""
        result = reconcile(expected, self.received(doc), self._strays.get(doc, ()))
        self._received.pop(doc, None)
        self._strays.pop(doc, None)
        return result

    def forget(self) -> None:
        """Drop what a failed commit may have left wrong; it is re-read when next needed."""
        self._received.clear()
        self._codes.clear()

    def _stored_codes(self, doc: str, since: float, op: Operation | None = None) -> list[str]:
        """The codes recorded under `doc` (and `op`) since then, voided scans taken out."""
        codes: list[str] = []
        for payload in self._stored_events(since):
            obj = json.loads(payload)
            if obj.get("doc") != doc or (op is not None and obj.get("op") != op):
                continue
            if "void_of" not in obj.get("fields", {}):
                codes.append(obj["code"])
            elif obj["code"] in codes:
                codes.remove(obj["code"])
        return codes
