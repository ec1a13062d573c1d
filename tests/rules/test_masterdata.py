"""agent/rules/masterdata.py: every set is parsed whole, bounded, or refused with where."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agent.rules.aggregation import Relations, TooManyUnits
from agent.rules.masterdata import (
    DEFAULT_BOUNDS,
    MAX_VERSION,
    Bounds,
    MasterDataError,
    MasterKind,
    body_of,
    from_body,
    parse,
)


def _parse(kind: MasterKind, obj: Any, bounds: Bounds = DEFAULT_BOUNDS) -> Any:
    return parse(kind, json.dumps(obj), "test", bounds=bounds)


@pytest.mark.parametrize(
    ("kind", "obj", "match"),
    [
        ("blocklist", {"version": 2**63 - 1, "entries": []}, "version must be"),
        ("blocklist", {"version": -1, "entries": []}, "version must be"),
        ("blocklist", {"version": 1.5, "entries": []}, "version must be"),
        (
            "blocklist",
            {"entries": [{"type": "code", "value": "x", "reason": "a\n\x1b[2J"}]},
            "printable",
        ),
        ("blocklist", {"entries": [{"type": "code", "value": "", "reason": ""}]}, "code of"),
        ("blocklist", {"entries": [{"type": "code", "value": "x" * 300}]}, "code of"),
        ("blocklist", {"entries": [{"type": "serial", "value": "x"}]}, "needs type"),
        ("blocklist", {"entries": "all"}, "must be a list"),
        ("relations", {"relations": {"p": ["c", 5]}}, "code of"),
        ("relations", {"relations": ["p"]}, "must be an object"),
        (
            "catalog",
            {"entries": [{"code": "8123456", "level": "unit", "ratio": 1, "parts": 1000000}]},
            "parts",
        ),
        ("catalog", {"entries": [{"code": "8123456", "level": "unit", "ratio": 10**9}]}, "ratio"),
        ("catalog", {"entries": [{"code": "8123456", "level": "unit", "ratio": "²"}]}, "ratio"),
        ("catalog", {"entries": [{"code": "８１２３４５６", "level": "unit", "ratio": 1}]}, "code"),
        (
            "catalog",
            {"entries": [{"code": "8123456", "level": "unit", "ratio": [1]}]},
            "text or a number",
        ),
        ("manifest", {"doc": "DN\n1", "codes": []}, "printable"),
        ("manifest", {"doc": "DN-1", "codes": [{"a": 1}]}, "code of"),
        ("manifest", {"codes": []}, "'doc'"),
    ],
)
def test_a_bad_document_is_refused_naming_where(kind: MasterKind, obj: Any, match: str) -> None:
    with pytest.raises(MasterDataError, match=match):
        _parse(kind, obj)


def test_codes_may_carry_gs_separators() -> None:
    code = "0106901234567892\x1d21SN1"
    value = _parse("blocklist", {"entries": [{"type": "code", "value": code}]})
    assert value.entries[0].value == code


def test_a_case_expanding_past_the_bound_is_refused_before_anything_is_applied() -> None:
    fanout = {
        f"L{d}-{i}": [f"L{d + 1}-{j}" for j in range(30)] for d in range(4) for i in range(30)
    }
    fanout["CASE"] = [f"L0-{j}" for j in range(30)]
    with pytest.raises(MasterDataError, match="max_case_units"):
        _parse("relations", {"relations": fanout})
    small = Bounds(max_case_units=1_000_000)
    relations = _parse("relations", {"relations": fanout}, small)
    with pytest.raises(TooManyUnits):
        relations.expand("CASE", limit=10_000)  # and the scan-time bound holds on its own
    with pytest.raises(MasterDataError, match="max_case_units"):
        _parse("manifest", {"doc": "D", "codes": [], "relations": fanout})


def test_cycles_do_not_loop() -> None:
    cyclic = Relations(1, {"a": ("b",), "b": ("a",)})
    assert cyclic.expand("a") == ("a",)
    assert cyclic.largest(10) is None


def test_documents_too_big_or_too_deep_are_refused() -> None:
    with pytest.raises(MasterDataError, match="larger than 100 bytes"):
        parse("blocklist", json.dumps({"entries": [], "pad": "x" * 200}), "t", bounds=Bounds(100))
    with pytest.raises(MasterDataError, match="nested too deeply"):
        parse("blocklist", '{"a":' + "[" * 20 + "]" * 20 + "}", "t")


@pytest.mark.parametrize("kind", ["catalog", "relations", "blocklist", "manifest"])
def test_a_set_round_trips_through_its_body(kind: MasterKind) -> None:
    documents: dict[str, dict[str, Any]] = {
        "catalog": {
            "entries": [{"code": "8123456", "level": "case", "ratio": 10, "name": "x", "parts": 1}]
        },
        "relations": {"relations": {"P": ["C1", "C2"]}},
        "blocklist": {"entries": [{"type": "batch", "value": "B1", "reason": "召回"}]},
        "manifest": {"doc": "DN-1", "supplier": "S", "codes": ["C1"], "relations": {}},
    }
    value = from_body(kind, documents[kind], 7, "t")
    assert value.version == 7
    assert body_of(value) == documents[kind]
    assert from_body(kind, body_of(value), MAX_VERSION, "t").version == MAX_VERSION
