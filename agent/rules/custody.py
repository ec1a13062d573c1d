"""Custody transitions: what may follow what for one unit code, as pure functions.

- A pack sold or dispensed twice is a 回流 signal; dispensing a destroyed pack is nonsense.
- Split-pack (拆零) allowance: a unit code of a split-dispensed product may be dispensed up to
  its configured number of parts without counting as a duplicate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from agent.rules.operations import CUSTODY_OPS, DISPENSING, OBSERVING, Operation
from agent.rules.reasons import Reason

_ANY: Final = CUSTODY_OPS | {OBSERVING}

#: last custody operation recorded here -> operations that may follow it. Anything else is
#: refused: the same operation again is `already_recorded`, a different one `state_conflict`.
#: A code never seen here may take any operation (it may have been received elsewhere).
FOLLOWS: Final[dict[Operation, frozenset[Operation]]] = {
    "receive": _ANY - {"receive", "customer_return"},
    "dispatch": frozenset({"receive", "customer_return", "recall", "stock_count"}),
    "dispense": frozenset({"customer_return", "recall", "stock_count"}),
    "sale": frozenset({"customer_return", "recall", "stock_count"}),
    "return_to_supplier": frozenset({"receive", "recall", "stock_count"}),
    "customer_return": _ANY - {"receive", "customer_return"},
    "destroy": frozenset({"stock_count"}),
    "recall": frozenset({"receive", "destroy", "return_to_supplier", "stock_count"}),
}


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a stateful rule refuses a scan; `needs_ack` stops the line until acknowledged."""

    reason: Reason
    variant: str | None = None
    needs_ack: bool = False
    detail: str = ""


def custody(
    op: Operation, last_op: Operation | None, count: int, *, parts: int = 1
) -> Refusal | None:
    """Judge `op` for a unit code whose last custody operation here was `last_op`.

    `count` is how many times `last_op` was recorded in a row; `parts` is the split-pack
    allowance of the product (1 for whole packs).
    """
    if last_op is None or op == OBSERVING:
        return None
    if op in DISPENSING and last_op in DISPENSING:
        if count < parts:
            return None  # the next part of a split pack, not a duplicate
        # The same unit sold or dispensed twice: a sign of a counterfeit or a 回流 pack.
        return Refusal("already_recorded", "resale", needs_ack=True, detail=last_op)
    if op in FOLLOWS.get(last_op, _ANY):
        return None
    if op == last_op:
        return Refusal("already_recorded", None, needs_ack=False, detail=last_op)
    return Refusal("state_conflict", last_op, needs_ack=op in DISPENSING, detail=last_op)
