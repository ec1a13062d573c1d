"""Manifests: the supplier's dispatch data for one receiving document, and how what was received
reconciles with it (matched, missing, unexpected, per product).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from agent.rules.aggregation import Relations


@dataclass(frozen=True, slots=True)
class Manifest:
    """The supplier's dispatch data for one document: the unit codes expected."""

    doc: str
    version: int = 0
    supplier: str = ""
    codes: tuple[str, ...] = ()
    relations: Relations = field(default_factory=Relations)

    def expected_units(self, global_relations: Relations) -> frozenset[str]:
        """Every unit code the document should deliver, cases expanded."""
        units: set[str] = set()
        for code in self.codes:
            expanded = global_relations.expand(code, self.relations)
            units.update(expanded if expanded is not None else (code,))
        return frozenset(units)


def product_of(code: str) -> str:
    """The product part of a unit code: a cn20 7-digit prefix, else the first 16 characters
    (`01` + GTIN-14 of a GS1 string).

    >>> product_of("81234560000000011234"), product_of("0106901234567892215A")
    ('8123456', '0106901234567892')
    """
    return code[:7] if len(code) == 20 and code.isascii() and code.isdigit() else code[:16]


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """What a closed receiving document delivered against its manifest."""

    matched: tuple[str, ...]
    missing: tuple[str, ...]
    unexpected: tuple[str, ...]
    products: dict[str, dict[str, int]]

    def counts(self, expected: int) -> dict[str, int]:
        """The report's `counts` object."""
        return {
            "expected": expected,
            "matched": len(self.matched),
            "missing": len(self.missing),
            "unexpected": len(self.unexpected),
        }

    def as_fields(self, expected: int) -> dict[str, Any]:
        """The reconciliation members of a report record."""
        return {
            "matched": list(self.matched),
            "missing": list(self.missing),
            "unexpected": list(self.unexpected),
            "counts": self.counts(expected),
            "products": self.products,
        }


def reconcile(
    expected: frozenset[str], received: Iterable[str], strays: Iterable[str]
) -> Reconciliation:
    """Compare the units received (and the strays refused or flagged on the way) with the
    units expected. A stray that the manifest does expect after all (a later manifest version)
    counts as received, not as unexpected.
    """
    got = set(received)
    unexpected = (set(strays) - expected) | (got - expected)
    products: dict[str, dict[str, int]] = {}
    for code in expected:
        products.setdefault(product_of(code), {"expected": 0, "received": 0})["expected"] += 1
    for code in got | (set(strays) - expected):
        products.setdefault(product_of(code), {"expected": 0, "received": 0})["received"] += 1
    return Reconciliation(
        matched=tuple(sorted(got & expected)),
        missing=tuple(sorted(expected - got)),
        unexpected=tuple(sorted(unexpected)),
        products=products,
    )
