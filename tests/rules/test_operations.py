"""agent/rules/operations.py and custody.py: each set defined once, each transition stated."""

from __future__ import annotations

import doctest
import importlib
import itertools

import pytest

from agent.rules.custody import FOLLOWS, custody
from agent.rules.operations import (
    AGGREGATING,
    BILL_TYPES,
    CUSTODY_OPS,
    DISPENSING,
    OBSERVING,
    OPERATIONS,
    counts_as_repeat,
    is_operation,
)


@pytest.mark.parametrize(
    "name",
    ["agent.rules.operations", "agent.rules.manifest", "agent.rules.receipt", "agent.rules.limits"],
)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0
    assert result.failed == 0


def test_the_sets_are_subsets_of_spec_operations() -> None:
    assert set(OPERATIONS) == set(BILL_TYPES)
    assert {"dispense", "sale"} == DISPENSING
    assert {"receive", "dispatch"} == AGGREGATING
    assert set(OPERATIONS) - {OBSERVING} == CUSTODY_OPS
    assert all(is_operation(op) for op in OPERATIONS)
    assert not any(is_operation(x) for x in ("", "Sale", "sell", 1, None, ["sale"]))


@pytest.mark.parametrize(("last", "op"), list(itertools.product([None, *OPERATIONS], OPERATIONS)))
def test_repeats_count_together_only_within_dispensing(last: str | None, op: str) -> None:
    assert is_operation(op)
    expected = last == op or (last in DISPENSING and op in DISPENSING)
    assert counts_as_repeat(last if is_operation(last) else None, op) is expected


@pytest.mark.parametrize(("last", "op"), list(itertools.product(sorted(FOLLOWS), OPERATIONS)))
def test_custody_transitions(last: str, op: str) -> None:
    assert is_operation(last)
    assert is_operation(op)
    refusal = custody(op, last, 1)
    if op == OBSERVING:
        assert refusal is None  # a count observes and is never refused by custody
    elif op in DISPENSING and last in DISPENSING:
        assert refusal is not None
        assert (refusal.reason, refusal.variant, refusal.needs_ack) == (
            "already_recorded",
            "resale",
            True,
        )
    elif op in FOLLOWS[last]:
        assert refusal is None
    else:
        assert refusal is not None
        assert refusal.reason == ("already_recorded" if op == last else "state_conflict")
        assert refusal.needs_ack is (op != last and op in DISPENSING)


def test_a_split_pack_may_be_dispensed_up_to_its_parts() -> None:
    assert custody("dispense", "dispense", 1, parts=3) is None
    assert custody("sale", "dispense", 2, parts=3) is None
    refusal = custody("dispense", "sale", 3, parts=3)
    assert refusal is not None
    assert refusal.variant == "resale"
    assert custody("dispense", None, 0) is None  # never seen here: received elsewhere
