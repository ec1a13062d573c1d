"""agent/codes/classify.py: the order in which families are tried (DOMAIN.md)."""

from __future__ import annotations

import pytest

from agent.codes import GS, CodeError, recognise


@pytest.mark.parametrize("text", ["80040000000000011234", "80200000000000011234"])
def test_8004_and_8020_numerics_are_cn20_even_with_a_gs1_symbology(text: str) -> None:
    assert recognise(text).kind == "cn20"
    assert recognise("]C1" + text).kind == "cn20"


def test_twenty_digits_starting_00_are_an_sscc() -> None:
    assert recognise("00157035381410375177").kind == "sscc"


def test_twenty_digits_01_gtin_serial_is_gs1_when_the_check_digit_holds() -> None:
    code = recognise("01069012345678922112")
    assert (code.kind, code.fields["serial"]) == ("gs1", "12")


def test_twenty_digits_01_with_a_wrong_gtin_check_is_an_enterprise_code() -> None:
    with pytest.raises(CodeError) as info:
        recognise("01069012345678932112")
    assert (info.value.reason, info.value.kind) == ("unknown_format", "cn20")


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("81234560000000011234", "cn20"),
        (f"0106901234567892{GS}21X", "gs1"),
        ("(01)06901234567892(21)X", "gs1"),
        ("]d20106901234567892", "gs1"),
        ("MA.156.M0.100761.21234561.S1", "ma"),
        ("6901234567892", "commodity"),
        ("hello", "unknown"),
    ],
)
def test_kind_of_each_family(text: str, kind: str) -> None:
    try:
        found = recognise(text).kind
    except CodeError as error:
        found = error.kind
    assert found == kind


@pytest.mark.parametrize("length", [15, 16, 18, 19, 21, 22, 25])
def test_near_miss_trace_code_reads_are_bad_length(length: int) -> None:
    with pytest.raises(CodeError) as info:
        recognise("8" + "1" * (length - 1))
    assert (info.value.reason, info.value.kind) == ("bad_length", "cn20")


def test_a_leading_01_without_a_full_gtin_is_not_tried_as_gs1() -> None:
    with pytest.raises(CodeError) as info:
        recognise("01069012345")
    assert (info.value.reason, info.value.kind) == ("unknown_format", "unknown")
