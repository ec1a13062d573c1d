"""agent/codes/gs1_dictionary.py: the GS1 Barcode Syntax Dictionary as data."""

from __future__ import annotations

from agent.codes.gs1_dictionary import ai_at, lookup, table


def test_the_pack_code_ais_are_as_domain_md_states() -> None:
    specs = {ai: lookup(ai) for ai in ("01", "17", "10", "21", "00")}
    shapes = {
        ai: (s.fixed, s.min_length, s.max_length, s.components[0].cset, s.components[0].linters)
        for ai, s in specs.items()
        if s is not None
    }
    assert shapes == {
        "01": (True, 14, 14, "N", ("csum", "gcppos2")),
        "17": (True, 6, 6, "N", ("yymmd0",)),
        "10": (False, 1, 20, "X", ()),
        "21": (False, 1, 20, "X", ()),
        "00": (True, 18, 18, "N", ("csum", "gcppos2")),
    }


def test_ranges_and_optional_components() -> None:
    assert lookup("3105") is lookup("3100")
    assert lookup("3106") is None
    gdti = lookup("253")
    assert gdti is not None
    assert (gdti.min_length, gdti.max_length) == (13, 30)
    assert gdti.components[1].optional


def test_all_ais_sharing_two_digits_have_one_length() -> None:
    lengths: dict[str, set[int]] = {}
    for ai in table().specs:
        lengths.setdefault(ai[:2], set()).add(len(ai))
    assert all(len(found) == 1 for found in lengths.values())


def test_ai_at_finds_the_ai_by_its_prefix_only_when_it_exists() -> None:
    assert ai_at("0106901234567892") == "01"
    assert ai_at("7006250101") == "7006"
    assert ai_at("7012") is None  # prefix 70 has 4-digit AIs, 7012 is none of them
    assert ai_at("2312") is None
    assert ai_at("8") is None
