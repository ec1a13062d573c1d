"""agent/rules/manifest.py: what a receiving document delivered against its manifest."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from agent.rules.aggregation import Relations
from agent.rules.manifest import Manifest, reconcile

CODES = st.sets(st.sampled_from([f"8123456{n:013d}" for n in range(12)] + ["01" + "1" * 18]))


def test_matched_missing_unexpected_and_per_product_counts() -> None:
    case = "81234580000000000001"
    units = [f"8123456{n:013d}" for n in range(4)]
    manifest = Manifest(
        "DN-1", codes=(case, units[3]), relations=Relations(1, {case: tuple(units[:3])})
    )
    expected = manifest.expected_units(Relations())
    assert expected == frozenset(units)
    stray = "8999999" + "0" * 13
    result = reconcile(expected, [units[0], units[1], stray], [stray])
    assert result.matched == (units[0], units[1])
    assert result.missing == (units[2], units[3])
    assert result.unexpected == (stray,)
    assert result.counts(len(expected)) == {
        "expected": 4,
        "matched": 2,
        "missing": 2,
        "unexpected": 1,
    }
    assert result.products == {
        "8123456": {"expected": 4, "received": 2},
        "8999999": {"expected": 0, "received": 1},
    }


@given(expected=CODES, received=CODES, strays=CODES)
def test_every_code_is_accounted_for_exactly_once(
    expected: set[str], received: set[str], strays: set[str]
) -> None:
    result = reconcile(frozenset(expected), received, strays)
    matched, missing, unexpected = set(result.matched), set(result.missing), set(result.unexpected)
    assert matched | missing == expected
    assert not matched & missing
    assert unexpected == (received | strays) - expected
    assert sum(p["expected"] for p in result.products.values()) == len(expected)
    assert sum(p["received"] for p in result.products.values()) == len(
        received | (strays - expected)
    )
