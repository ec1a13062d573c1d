"""agent/codes/gs1.py: GS1 element strings and SSCC via biip."""

from __future__ import annotations

import datetime as dt
import string

import pytest
from biip import ParseError
from biip.checksums import gs1_standard_check_digit
from biip.symbology import GS1Symbology, SymbologyIdentifier

from agent.codes import GS, CodeError, recognise
from agent.codes.gs1 import check_digit_ok, is_gs1_symbology
from agent.rules.catalog import Catalog
from agent.rules.decision import assess

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


@pytest.mark.parametrize("hri", [f"(01){GTIN}((21)X", "(x)1", f"(01){GTIN}(21X"])
def test_malformed_hri_is_gs1_structure(hri: str) -> None:
    error = _refusal(hri)
    assert (error.reason, error.variant) == ("gs1_structure", "malformed")


@pytest.mark.parametrize("hri", [f"(01){GTIN}(21)", f"(01){GTIN}7(21)X", "(01)", "(01)123"])
def test_hri_element_of_the_wrong_length_is_bad_length(hri: str) -> None:
    assert _refusal(hri).reason == "bad_length"


def test_unknown_ai_is_gs1_structure() -> None:
    # 2x: no AI starts with 23 (the retired variable-length AI) in the syntax dictionary.
    error = _refusal(f"]C101{GTIN}2312{GS}21X")
    assert (error.reason, error.variant) == ("gs1_structure", "unknown_ai")


def test_known_ai_without_data_is_bad_length() -> None:
    error = _refusal(f"]C101{GTIN}{GS}99{GS}")
    assert (error.reason, error.where) == ("bad_length", "AI (99) INTERNAL")


def test_repeated_ai_with_another_value_is_refused() -> None:
    error = _refusal(f"01{GTIN}21A{GS}21B")
    assert (error.reason, error.variant) == ("gs1_structure", "ai_pairing")


def test_repeated_ai_with_the_same_value_is_one_field() -> None:
    # Concatenated reads of two carriers on one label repeat AIs (the engine allows it).
    assert recognise(f"01{GTIN}21A{GS}01{GTIN}21A").fields["serial"] == "A"


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


def test_gs1_symbology_ids_are_biips_over_every_identifier() -> None:
    """Our set (kept so a `]C0` cn20 scan does not load biip) says what biip says."""

    def biip_says(symbology: str) -> bool:
        try:
            gs1 = SymbologyIdentifier.extract(symbology).gs1_symbology
        except (ParseError, ValueError):  # biip raises ValueError for `]X` + a non-digit
            return False
        return gs1 is not None and gs1 in GS1Symbology.with_gs1_messages()

    chars = string.ascii_letters + string.digits
    for code in chars:
        for modifier in chars:
            symbology = f"]{code}{modifier}"
            assert is_gs1_symbology(symbology) is biip_says(symbology), symbology


def test_check_digit_is_biips() -> None:
    for n in range(0, 10**7, 7919):
        body = f"069{n:010d}"
        good = f"{body}{gs1_standard_check_digit(body)}"
        assert check_digit_ok(good)
        assert not check_digit_ok(f"{body}{(int(good[-1]) + 1) % 10}")


def test_serial_containing_17_that_is_no_date_is_accepted_without_gs() -> None:
    assert recognise(f"01{GTIN}21AB17991399").fields["serial"] == "AB17991399"


# --- The GS1 Barcode Syntax Engine's rules, on hand-written vectors (GS1 General Specifications)

PACK = f"(01){GTIN}(21)ABC123"


def _pack_with(element: str) -> CodeError:
    return _refusal(PACK + element)


@pytest.mark.parametrize("element", ["(100)1234", "(9999)1234", "(2)1", "(12345)1"])
def test_hri_keeps_the_ai_boundaries_its_brackets_give(element: str) -> None:
    # (100) must not be re-read as (10) 01234; AIs that do not exist are refused.
    error = _pack_with(element)
    assert (error.reason, error.variant) == ("gs1_structure", "unknown_ai")
    assert error.where == f"AI {element[: element.index(')') + 1]}"


def test_hri_escaped_bracket_is_data_and_blanks_around_brackets_are_layout() -> None:
    assert recognise(f"(01) {GTIN} (21) AB\\(C").fields["serial"] == "AB(C"
    assert _refusal(f"(01){GTIN}(21)AB C").reason == "bad_charset"


@pytest.mark.parametrize(
    ("element", "reason", "where"),
    [
        ("(7041)XYZ", "bad_value", "AI (7041) UFRGT UNIT TYPE"),  # no such package type
        ("(3910)000123", "bad_value", "AI (3910) AMOUNT"),  # 000 is no ISO 4217 currency
        ("(422)999", "bad_value", "AI (422) ORIGIN"),  # 999 is no ISO 3166 country
        ("(4321)2", "bad_value", "AI (4321) DANGEROUS GOODS"),  # a flag is 0 or 1
        ("(7006)201310", "bad_date", "AI (7006) FIRST FREEZE DATE"),  # month 13
        ("(7006)200931", "bad_date", "AI (7006) FIRST FREEZE DATE"),  # 31 September
        ("(7006)250600", "bad_date", "AI (7006) FIRST FREEZE DATE"),  # no day 00 here
        ("(7006)2x0131", "bad_date", "AI (7006) FIRST FREEZE DATE"),  # a date has no letters
        ("(11)210229", "bad_date", "AI (11) PROD DATE"),  # 2021 is no leap year
        ("(402)12345678901234561", "bad_check_digit", "AI (402) GSIN"),
        ("(8007)GB83WEST12345698765432", "bad_check_digit", "AI (8007) IBAN"),
        ("(8007)GB82WEST1234569876543~", "bad_charset", "AI (8007) IBAN"),
        ("(8013)1987654Ad4X4bL5ttr2310c2L", "bad_check_digit", "AI (8013) GMN"),
        ("(91)a^b", "bad_charset", "AI (91) INTERNAL"),  # ^ is not in CSET 82
        ("(8010)0123#a", "bad_charset", "AI (8010) CPID"),  # CSET 39: upper case only
        ("(8030)ABCD=", "bad_charset", "AI (8030) DIGSIG"),  # padding only to 3n
        ("(8001)00001234500101", "bad_value", "AI (8001) DIMENSIONS"),  # zero width
        ("(3100)12345", "bad_length", "AI (3100) NET WEIGHT (kg)"),
    ],
)
def test_every_ai_is_checked_and_the_refusal_names_it(
    element: str, reason: str, where: str
) -> None:
    error = _pack_with(element)
    assert (error.reason, error.where) == (reason, where)


@pytest.mark.parametrize(
    "element",
    [
        "(7041)BX",  # box
        "(3910)978123",  # EUR 123
        "(422)156",  # China
        "(7006)250601",
        "(11)200229",  # 2020 is a leap year
        "(402)12345678901234560",
        "(8007)GB82WEST12345698765432",  # the IBAN standard's own example
        "(8013)1987654Ad4X4bL5ttr2310c2K",  # GS1 General Specifications' GMN example
        "(8030)ABC123",
        "(8030)ABC12=",  # base64url with its padding
        "(12)250101",  # requisite (8020) may be on another carrier of the item: not refused
        "(8011)0",  # GenSpecs 3.9.11: a lone 0 is a serial like any other
    ],
)
def test_valid_elements_are_accepted_with_the_pack(element: str) -> None:
    assert recognise(PACK + element).fields["serial"] == "ABC123"


@pytest.mark.parametrize("element", [f"(02){GTIN}", "(235)X", "(255)95060001343520"])
def test_mutually_exclusive_ais_are_refused(element: str) -> None:
    error = _pack_with(element)
    assert (error.reason, error.variant) == ("gs1_structure", "ai_pairing")


def test_refusal_message_names_the_ai_at_fault() -> None:
    decision = assess(
        f"]d201{GTIN}7006201310{GS}21ABC123",
        op="receive",
        catalog=Catalog(),
        today=dt.date(2026, 1, 1),
    )
    assert decision.reason == "bad_date"
    assert "(7006)" in decision.message("en")
    assert "(7006)" in decision.message("zh")
    assert "GTIN or serial" not in decision.message("en")


def test_digital_link_with_gtin_and_serial_is_the_pack_code_it_names() -> None:
    code = recognise(f"]Q1https://id.gs1.org/01/{GTIN}/10/B7/21/SN%2F1?17=270315")
    scanned = recognise(f"]d201{GTIN}10B7{GS}21SN/1{GS}17270315")
    assert code.kind == "gs1"
    assert (
        code.fields
        == scanned.fields
        == {
            "gtin": GTIN,
            "batch": "B7",
            "serial": "SN/1",
            "expiry": "2027-03-15",
        }
    )
    assert code.text == scanned.text


def test_digital_link_is_held_to_the_same_rules() -> None:
    assert _refusal("https://id.gs1.org/01/06901234567893/21/X").reason == "bad_check_digit"
    assert _refusal(f"https://id.gs1.org/01/{GTIN}").variant == "no_serial"
    assert _refusal("https://example.com/about").reason == "unknown_format"
