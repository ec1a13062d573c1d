"""agent/codes/ma.py: MA / IDcode."""

from __future__ import annotations

import pytest

from agent.codes import CodeError, recognise

DOMAIN_EXAMPLE = "MA.156.M0.100761.21234561.Sx00008.M220117.L20220117.E220130.V220117.C3"
PRODUCT = "MA.156.M0.100761.21234561"


def _refusal(raw: str) -> CodeError:
    with pytest.raises(CodeError) as info:
        recognise(raw)
    return info.value


def test_domain_example() -> None:
    code = recognise(DOMAIN_EXAMPLE)
    assert code.kind == "ma"
    assert code.text == DOMAIN_EXAMPLE
    assert code.fields == {
        "product_code": PRODUCT,
        "serial": "x00008",
        "batch": "20220117",
        "expiry": "2022-01-30",
    }


def test_v_is_the_expiry_when_there_is_no_e() -> None:
    assert recognise(f"{PRODUCT}.S1.V20270131").fields["expiry"] == "2027-01-31"


def test_serial_only() -> None:
    assert recognise(f"{PRODUCT}.SABC").fields == {"product_code": PRODUCT, "serial": "ABC"}


def test_without_serial_names_a_product() -> None:
    error = _refusal(f"{PRODUCT}.L2022.E270101")
    assert (error.reason, error.kind, error.variant) == ("gs1_structure", "ma", "no_serial")
    assert error.fields["expiry"] == "2027-01-01"


@pytest.mark.parametrize("date", ["M221301", "E220230", "V2201", "E20270132", "M22011x", "E220100"])
def test_bad_dates(date: str) -> None:
    assert _refusal(f"{PRODUCT}.S1.{date}").reason == "bad_date"


@pytest.mark.parametrize(
    "text",
    [
        "MA.156.M0.100761",  # product part incomplete
        "MA.15.M0.100761.1.S1",  # country code not 3 digits
        f"{PRODUCT}.S1.S2",  # repeated qualifier
        f"{PRODUCT}.S",  # empty qualifier value
        f"{PRODUCT}.s1",  # qualifier letters are upper case
        f"{PRODUCT}..S1",  # empty part
    ],
)
def test_malformed_structure(text: str) -> None:
    error = _refusal(text)
    assert (error.reason, error.kind) == ("unknown_format", "ma")


def test_characters_outside_letters_and_digits() -> None:
    assert _refusal(f"{PRODUCT}.S1-2").reason == "bad_charset"


@pytest.mark.parametrize(
    "text",
    [
        "MA.\u00b256.M0.100761.21234561.Sx00008.L20220117",  # a superscript two as country
        "MA.156.M0.100761.21234561.Sx00008.L2022011\u00b2",  # and in a date
        "MA.156.M0.100761.21234561.Sx00008.L\u0662\u0660\u0662\u0662\u0660\u0661",
    ],
)
def test_digits_that_are_not_ascii_are_refused_not_a_crash(text: str) -> None:
    with pytest.raises(CodeError):
        recognise(text)
