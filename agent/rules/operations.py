"""The operations a scan can be recorded under, and the national bill type each maps to."""

from __future__ import annotations

from typing import Final

#: Operation names exactly as SPEC.md fixes them.
OPERATIONS: Final[tuple[str, ...]] = (
    "receive",
    "dispatch",
    "dispense",
    "sale",
    "return_to_supplier",
    "customer_return",
    "destroy",
    "recall",
    "stock_count",
)

#: Operations at which only unit (小码) codes are legitimate.
UNIT_ONLY_OPERATIONS: Final[frozenset[str]] = frozenset({"dispense", "sale"})

#: Bill-type codes of the national platform's upload API (DOMAIN.md). `recall` is recorded as
#: the recall-out movement and `stock_count` as a count gain; a deployment that books counts
#: differently maps them on the server side.
BILL_TYPES: Final[dict[str, str]] = {
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

DEFAULT_OPERATION: Final = "dispense"
