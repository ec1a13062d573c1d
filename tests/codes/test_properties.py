"""Property-based tests over every code family (hypothesis).

The check digit is computed here with DOMAIN.md's formula, independently of biip.
"""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.codes import GS, CodeError, recognise
from agent.rules.catalog import Catalog
from agent.rules.decision import assess
from agent.rules.reasons import STATELESS_REASONS

ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def with_check_digit(payload: str) -> str:
    """Append the GS1 mod-10 check digit: weights 3,1,3,… from the right."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(payload)))
    return payload + str((10 - total % 10) % 10)


digits = st.text(alphabet="0123456789", min_size=1, max_size=1)
gtins = st.text(alphabet="0123456789", min_size=13, max_size=13).map(with_check_digit)
ssccs = st.text(alphabet="0123456789", min_size=17, max_size=17).map(with_check_digit)
values = st.text(alphabet=ALNUM, min_size=1, max_size=20)
dates = st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2049, 12, 31))


def _changed(code: str, index: int, digit: str) -> str:
    return code[:index] + digit + code[index + 1 :]


@given(gtin=gtins, expiry=dates, batch=values, serial=values)
def test_every_valid_gtin_with_a_serial_is_accepted(
    gtin: str, expiry: dt.date, batch: str, serial: str
) -> None:
    code = recognise(f"]d201{gtin}17{expiry:%y%m%d}10{batch}{GS}21{serial}")
    assert code.kind == "gs1"
    assert code.fields == {
        "gtin": gtin,
        "expiry": expiry.isoformat(),
        "batch": batch,
        "serial": serial,
    }


@given(gtin=gtins, serial=values, index=st.integers(0, 13), digit=digits)
def test_any_single_digit_change_of_a_gtin_is_refused(
    gtin: str, serial: str, index: int, digit: str
) -> None:
    bad = _changed(gtin, index, digit)
    if bad == gtin:
        return
    with pytest.raises(CodeError):
        recognise(f"01{bad}{GS}21{serial}")


@given(sscc=ssccs)
def test_every_valid_sscc_is_accepted_as_a_pallet(sscc: str) -> None:
    code = recognise(f"00{sscc}")
    assert (code.kind, code.level, code.fields) == ("sscc", "pallet", {"sscc": sscc})


@given(sscc=ssccs, index=st.integers(0, 17), digit=digits)
def test_any_single_digit_change_of_an_sscc_is_refused(sscc: str, index: int, digit: str) -> None:
    bad = _changed(sscc, index, digit)
    if bad == sscc:
        return
    with pytest.raises(CodeError) as info:
        recognise(f"00{bad}")
    assert info.value.reason == "bad_check_digit"


@given(rest=st.text(alphabet="0123456789", min_size=19, max_size=19))
def test_every_20_digit_code_starting_8_is_cn20(rest: str) -> None:
    code = recognise("8" + rest)
    assert code.kind == "cn20"
    assert code.fields["product_code"] == ("8" + rest)[:7]


def _assert_decided(raw: str) -> None:
    decision = assess(raw, op="dispense", catalog=Catalog(), today=dt.date(2026, 1, 1))
    assert decision.accepted == (decision.reason is None)
    assert decision.accepted or decision.reason in STATELESS_REASONS
    assert decision.message("zh")
    assert decision.message("en")


@settings(max_examples=300)
@given(raw=st.text())
def test_random_unicode_never_raises_and_always_yields_a_reason(raw: str) -> None:
    _assert_decided(raw)


@settings(max_examples=300)
@given(raw=st.binary().map(lambda b: b.decode("latin-1")))
def test_random_bytes_never_raise_and_always_yield_a_reason(raw: str) -> None:
    _assert_decided(raw)


@settings(max_examples=500)
@given(
    raw=st.lists(
        st.sampled_from([*"0123456789()]C1d2.MASLEV", GS, "<GS>", "0106901234567892"])
    ).map("".join)
)
def test_code_shaped_noise_never_raises(raw: str) -> None:
    _assert_decided(raw)


serials = st.text(alphabet=ALNUM + "!\"%&'*+,-./:;<=>?_", min_size=1, max_size=20)


@given(gtin=gtins, expiry=dates, batch=values, serial=serials)
def test_scanned_hri_and_digital_link_spellings_are_one_code(
    gtin: str, expiry: dt.date, batch: str, serial: str
) -> None:
    scanned = recognise(f"]d201{gtin}17{expiry:%y%m%d}10{batch}{GS}21{serial}")
    hri = recognise(f"(01){gtin}(17){expiry:%y%m%d}(10){batch}(21){serial}")
    quoted = "".join(c if c.isalnum() else f"%{ord(c):02X}" for c in serial)
    link = recognise(f"https://id.gs1.org/01/{gtin}/10/{batch}/21/{quoted}?17={expiry:%y%m%d}")
    assert scanned.fields == hri.fields == link.fields
    assert scanned.text == hri.text


@given(gtin=gtins, serial=values, ai=st.integers(0, 9999).map(str))
def test_an_hri_element_is_never_reread_with_other_boundaries(
    gtin: str, serial: str, ai: str
) -> None:
    decision = assess(
        f"(01){gtin}(21){serial}({ai})1234",
        op="receive",
        catalog=Catalog(),
        today=dt.date(2026, 1, 1),
    )
    # Accepted only as exactly these three elements: the value after ({ai}) is its own.
    assert not decision.accepted or decision.text.endswith(f"{ai}1234")
    assert decision.accepted or decision.reason in STATELESS_REASONS
    assert decision.fields.get("serial", serial) == serial
