"""agent/codes/gs1.py: GS1 element strings and SSCC via biip."""

from __future__ import annotations

import pytest

from agent.codes import GS, CodeError, recognise
from agent.codes.gs1 import check_digit_ok, is_gs1_symbology

GTIN = "06901234567892"


def _refusal(raw: str) -> CodeError:
    with pytest.raises(CodeError) as info:
        recognise(raw)
    return info.value


def test_full_drug_label_with_gs() -> None:
    code = recognise(f"]d201{GTIN}17270315" + f"10B2024{GS}21SN0001")
    assert code.kind == "gs1"
    assert code.symbology == "]d2"
    assert code.fields == {
        "gtin": GTIN,
        "expiry": "2027-03-15",
        "batch": "B2024",
        "serial": "SN0001",
    }


def test_expiry_day_00_is_the_last_day_of_the_month() -> None:
    assert recognise(f"01{GTIN}17280200{GS}21X").fields["expiry"] == "2028-02-29"
    assert recognise(f"01{GTIN}17270400{GS}21X").fields["expiry"] == "2027-04-30"


@pytest.mark.parametrize("date", ["271301", "270230", "270132", "270000"])
def test_invalid_expiry_dates_are_bad_date(date: str) -> None:
    error = _refusal(f"01{GTIN}17{date}10LOT{GS}21X")
    assert (error.reason, error.kind) == ("bad_date", "gs1")


def test_wrong_gtin_check_digit() -> None:
    error = _refusal(f"0106901234567893{GS}21X")
    assert error.reason == "bad_check_digit"
    assert error.fields == {"gtin": "06901234567893"}


def test_without_serial_is_gs1_structure() -> None:
    error = _refusal(f"01{GTIN}1727031510LOT")
    assert (error.reason, error.variant) == ("gs1_structure", "no_serial")
    assert error.fields["batch"] == "LOT"


def test_batch_swallowing_serial_is_refused_not_read_as_a_batch() -> None:
    error = _refusal(f"01{GTIN}1727031510B202421SN0001")
    assert (error.reason, error.variant) == ("gs1_structure", "separator_lost")


def test_serial_swallowing_batch_is_refused_not_accepted_with_a_wrong_serial() -> None:
    error = _refusal(f"01{GTIN}1727031521SN000110B2024")
    assert (error.reason, error.variant) == ("gs1_structure", "separator_lost")


def test_serial_swallowing_expiry_is_refused() -> None:
    error = _refusal(f"01{GTIN}21SN000117270315")
    assert error.variant == "separator_lost"


def test_last_variable_field_needs_no_gs() -> None:
    assert recognise(f"01{GTIN}1727031521SN0001").fields["serial"] == "SN0001"


def test_serial_may_contain_10_when_the_batch_is_already_there() -> None:
    code = recognise(f"01{GTIN}10B7{GS}21AB10CD")
    assert code.fields["serial"] == "AB10CD"
    assert code.fields["batch"] == "B7"


def test_gs_present_means_the_structure_is_trusted() -> None:
    code = recognise(f"01{GTIN}21SN10X{GS}10B21")
    assert (code.fields["serial"], code.fields["batch"]) == ("SN10X", "B21")


def test_hri_is_parsed_and_canonicalised_like_the_scanned_symbol() -> None:
    hri = recognise(f"(01){GTIN}(17)270315(10)B2024(21)SN0001")
    scanned = recognise(f"]d201{GTIN}1727031510B2024<GS>21SN0001")
    assert hri.text == scanned.text == f"01{GTIN}1727031510B2024{GS}21SN0001"
    assert hri.fields == scanned.fields


@pytest.mark.parametrize(
    "hri", [f"(01){GTIN}((21)X", f"(01){GTIN}(21)", f"(01){GTIN}7(21)X", "(01)", "(x)1"]
)
def test_malformed_hri_is_gs1_structure(hri: str) -> None:
    assert _refusal(hri).reason == "gs1_structure"


def test_unknown_ai_is_gs1_structure() -> None:
    assert _refusal(f"]C101{GTIN}{GS}99{GS}").reason == "gs1_structure"


def test_repeated_ai_is_refused() -> None:
    assert _refusal(f"01{GTIN}21A{GS}21B").reason == "gs1_structure"


def test_gs1_message_without_gtin_is_gs1_structure() -> None:
    # With a GS1 symbology id biip reads AI 8004; it is still no pack code.
    error = _refusal("]C180040000000000011234X")
    assert (error.reason, error.kind) == ("gs1_structure", "gs1")


def test_sscc_is_a_pallet() -> None:
    code = recognise("]C100157035381410375177")
    assert (code.kind, code.level, code.fields) == (
        "sscc",
        "pallet",
        {"sscc": "157035381410375177"},
    )


def test_sscc_in_hri_and_with_more_elements() -> None:
    assert recognise("(00)157035381410375177").kind == "sscc"
    assert recognise(f"00157035381410375177{GS}02{GTIN}3710").fields["sscc"] == "157035381410375177"


def test_sscc_wrong_check_digit() -> None:
    error = _refusal("00157035381410375178")
    assert (error.reason, error.kind) == ("bad_check_digit", "sscc")


def test_check_digit_ok_examples_from_domain() -> None:
    assert check_digit_ok("06901234567892")
    assert check_digit_ok("16901234567899")
    assert check_digit_ok("157035381410375177")
    assert not check_digit_ok("16901234567890")
    assert not check_digit_ok("")
    assert not check_digit_ok("1x")


@pytest.mark.parametrize(
    ("symbology", "gs1"),
    [
        ("]C1", True),
        ("]d2", True),
        ("]Q3", True),
        ("]e0", True),
        ("]C0", False),
        ("]E0", False),
        ("]zz", False),
    ],
)
def test_gs1_symbology_ids(symbology: str, gs1: bool) -> None:
    assert is_gs1_symbology(symbology) is gs1


def test_serial_containing_17_that_is_no_date_is_accepted_without_gs() -> None:
    assert recognise(f"01{GTIN}21AB17991399").fields["serial"] == "AB17991399"
