"""The operations a scan can be recorded under, the sets the rules are made of, and the
national bill type each maps to. Each set is defined here once and imported everywhere else.
"""

from __future__ import annotations

from typing import Final, Literal, TypeGuard, get_args

#: Operation names exactly as SPEC.md fixes them.
Operation = Literal[
    "receive",
    "dispatch",
    "dispense",
    "sale",
    "return_to_supplier",
    "customer_return",
    "destroy",
    "recall",
    "stock_count",
]
OPERATIONS: Final[tuple[Operation, ...]] = get_args(Operation)

#: Operations that take a unit out to a patient or customer. Only unit (小码) codes are
#: legitimate there, expired packs are refused, and the two count together: a unit dispensed
#: and then sold (or sold twice) is the same 回流 signal.
DISPENSING: Final[frozenset[Operation]] = frozenset({"dispense", "sale"})

#: Operations at which a case or middle-pack code stands for the units packed in it (one event
#: per unit); without packing data such a scan is refused (`no_aggregation`).
AGGREGATING: Final[frozenset[Operation]] = frozenset({"receive", "dispatch"})

#: The operation that observes and changes nothing: no custody state is kept for it.
OBSERVING: Final[Operation] = "stock_count"

#: Operations that change who holds the pack.
CUSTODY_OPS: Final[frozenset[Operation]] = frozenset(OPERATIONS) - {OBSERVING}

#: Bill-type codes of the national platform's upload API (DOMAIN.md). `recall` is recorded as
#: the recall-out movement and `stock_count` as a count gain; a deployment that books counts
#: differently maps them on the server side.
BILL_TYPES: Final[dict[Operation, str]] = {
    "receive": "102",
    "dispatch": "201",
    "dispense": "323",
    "sale": "321",
    "return_to_supplier": "202",
    "customer_return": "116",
    "destroy": "205",
    "recall": "211",
    "stock_count": "111",
}

DEFAULT_OPERATION: Final[Operation] = "dispense"


def is_operation(value: object) -> TypeGuard[Operation]:
    """True when `value` is one of SPEC's operation names.

    >>> is_operation("sale"), is_operation("sell"), is_operation(None)
    (True, False, False)
    """
    return isinstance(value, str) and value in OPERATIONS


def counts_as_repeat(last: Operation | None, op: Operation) -> bool:
    """Whether `op` repeats `last` for one code's custody count (dispense and sale count together).

    >>> counts_as_repeat("dispense", "sale"), counts_as_repeat("receive", "dispatch")
    (True, False)
    """
    return last == op or (last in DISPENSING and op in DISPENSING)
