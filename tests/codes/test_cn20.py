"""agent/codes/cn20.py and the classifier's cn20-first rule."""

from __future__ import annotations

import pytest

from agent.codes import CodeError, recognise
from agent.codes.cn20 import TraceCode, set_check_verifier


def test_fields() -> None:
    code = recognise("81234560000000011234")
    assert code.kind == "cn20"
    assert code.fields == {"product_code": "8123456", "serial": "000000001"}


def test_special_control_prefix_89() -> None:
    assert recognise("89000010000000011234").fields["special_control"] is True


def test_twenty_digits_not_starting_with_8_are_not_accepted() -> None:
    with pytest.raises(CodeError) as info:
        recognise("12345678901234567890")
    assert info.value.reason == "unknown_format"


@pytest.mark.parametrize("text", ["8123456000000001123", "812345600000000112345"])
def test_near_miss_lengths_are_bad_length(text: str) -> None:
    with pytest.raises(CodeError) as info:
        recognise(text)
    assert info.value.reason == "bad_length"


def test_80_prefixed_codes_are_cn20_not_gs1_ai_8004() -> None:
    assert recognise("80040000000000011234").kind == "cn20"


def test_verifier_hook_is_consulted() -> None:
    set_check_verifier(lambda text: text.endswith("0000"))
    try:
        assert TraceCode.parse("81234560000000010000").text.endswith("0000")
        with pytest.raises(CodeError) as info:
            TraceCode.parse("81234560000000011234")
        assert info.value.reason == "bad_check_digit"
    finally:
        set_check_verifier(None)


def test_a_failing_verifier_refuses_instead_of_crashing() -> None:
    def broken(text: str) -> bool:
        raise RuntimeError(text)

    set_check_verifier(broken)
    try:
        with pytest.raises(CodeError) as info:
            TraceCode.parse("81234560000000011234")
        assert info.value.reason == "bad_check_digit"
    finally:
        set_check_verifier(None)
