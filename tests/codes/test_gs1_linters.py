"""agent/codes/gs1_linters.py: the GS1 Barcode Syntax Tests, on facts from the standards."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.codes.gs1_linters import CSET_LINTERS, LINTERS, Lint, couponcode, csum, iban


@pytest.mark.parametrize(
    ("linter", "value", "error"),
    [
        # Mod-10 check digits (GS1 General Specifications 7.9.1; DOMAIN.md's examples).
        ("csum", "06901234567892", None),
        ("csum", "157035381410375177", None),
        ("csum", "06901234567893", "incorrect_check_digit"),
        ("csum", "0690123456789x", "non_digit_character"),
        # Check character pair (7.9.5): the General Specifications' GMN example.
        ("csumalpha", "1987654Ad4X4bL5ttr2310c2K", None),
        ("csumalpha", "1987654Ad4X4bL5ttr2310c2L", "incorrect_check_pair"),
        ("csumalpha", "22", None),
        # Dates (7.12): day 00 allowed only where the format says so, leap years counted.
        ("yymmd0", "250600", None),
        ("yymmd0", "000229", None),
        ("yymmd0", "210229", "illegal_day"),
        ("yymmd0", "251301", "illegal_month"),
        ("yymmdd", "250600", "illegal_day"),
        ("yyyymmdd", "19000229", "illegal_day"),
        ("yyyymmdd", "20000229", None),
        ("hhmi", "2359", None),
        ("hhmi", "2400", "illegal_hour"),
        ("hhmi", "2360", "illegal_minute"),
        ("ss", "60", "illegal_second"),
        # Code lists: ISO 3166, ISO 4217, UN/ECE Recommendation 21, AIDC media types.
        ("iso3166", "156", None),
        ("iso3166", "999", "not_iso3166"),
        ("iso3166999", "999", None),
        ("iso3166alpha2", "CN", None),
        ("iso3166alpha2", "XX", "not_iso3166_alpha2"),
        ("iso4217", "978", None),
        ("iso4217", "000", "not_iso4217"),
        ("packagetype", "BX", None),
        ("packagetype", "XYZ", "invalid_package_type"),
        ("mediatype", "01", None),
        ("mediatype", "11", "invalid_media_type"),
        # IBAN (ISO 13616): the standard's example and a changed check.
        ("iban", "GB82WEST12345698765432", None),
        ("iban", "GB83WEST12345698765432", "incorrect_iban_checksum"),
        ("iban", "XX82WEST12345698765432", "illegal_iban_country_code"),
        # Structures.
        ("pieceoftotal", "0102", None),
        ("pieceoftotal", "0201", "piece_number_exceeds_total"),
        ("pieceoftotal", "0002", "zero_piece_number"),
        ("posinseqslash", "1/2", None),
        ("posinseqslash", "3/2", "position_exceeds_end"),
        ("posinseqslash", "01/2", "illegal_zero_prefix"),
        ("posinseqslash", "1-2", "position_in_sequence_malformed"),
        ("latitude", "1800000000", None),
        ("latitude", "1800000001", "invalid_latitude"),
        ("pcenc", "A%20B", None),
        ("pcenc", "A%2", "invalid_percent_sequence"),
        ("nozeroprefix", "0", None),
        ("nozeroprefix", "012", "illegal_zero_prefix"),
        ("hasnondigit", "12A", None),
        ("hasnondigit", "123", "requires_non_digit_character"),
        ("winding", "9", None),
        ("winding", "2", "invalid_winding_direction"),
        ("gcppos2", "0x234567890123", "invalid_gcp_prefix"),
    ],
)
def test_linter_facts(linter: str, value: str, error: str | None) -> None:
    fault = LINTERS[linter](value)
    assert (fault.error if fault else None) == error


@pytest.mark.parametrize(
    ("cset", "good", "bad"),
    [("N", "0123", "01 3"), ("X", "aZ!%/_?", "a~b"), ("Y", "AB#-/9", "Ab"), ("Z", "aZ-_9", "a+b")],
)
def test_character_sets(cset: str, good: str, bad: str) -> None:
    assert CSET_LINTERS[cset](good) is None
    fault = CSET_LINTERS[cset](bad)
    assert fault is not None
    assert fault.position == 1 if cset != "N" else fault.position == 2


def test_coupon_structure() -> None:
    # GCP VLI 0 (6 digits), offer code, save value (VLI 1), 1st purchase requirement
    # (VLI 1, value, code 0, family 123): the shortest complete coupon.
    coupon = "0" + "012345" + "123456" + "1" + "5" + "1" + "1" + "0" + "123"
    assert couponcode(coupon) is None
    fault = couponcode(coupon + "9")  # a section 9 with nothing in it
    assert fault == Lint("coupon_missing_save_value_code")
    assert couponcode(coupon + "8") == Lint("coupon_excess_data", len(coupon))
    assert couponcode(coupon[:-1]) is not None


@given(value=st.text(max_size=40))
def test_no_linter_raises_on_any_text(value: str) -> None:
    for linter in (*LINTERS.values(), *CSET_LINTERS.values()):
        fault = linter(value)
        assert fault is None or 0 <= fault.position <= max(len(value), 1)


@given(payload=st.text(alphabet="0123456789", min_size=1, max_size=17))
def test_csum_accepts_exactly_one_final_digit(payload: str) -> None:
    verdicts = [csum(payload + d) is None for d in "0123456789"]
    assert verdicts.count(True) == 1


@given(body=st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=7, max_size=26))
def test_iban_check_digits_from_iso_7064_are_accepted(body: str) -> None:
    # ISO 13616: check digits = 98 - (BBAN + country + "00" as digits) mod 97.
    number = int("".join(str(int(c, 36)) for c in body + "CN00"))
    check = f"{98 - number % 97:02d}"
    assert iban("CN" + check + body) is None
