"""agent/rules/decision.py: the stateless judge (packaging level, expiry) and `assess`."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from agent.codes import GS
from agent.rules.catalog import Catalog
from agent.rules.decision import assess
from agent.rules.operations import OPERATIONS, Operation
from agent.rules.reasons import MESSAGES
from agent.service.masterfiles import read_catalog

TODAY = dt.date(2026, 6, 15)
UNIT_GTIN, CASE_GTIN = "06901234567892", "16901234567899"
CATALOG_CSV = (
    "code,level,ratio,name\n"
    "8123456,unit,1,Amoxicillin 0.25g x24\n"
    "8123457,middle,10,Amoxicillin middle pack\n"
    "8123458,case,200,Amoxicillin case\n"
    f"{UNIT_GTIN},unit,1,Imported tablets\n"
    f"{CASE_GTIN},case,50,Imported tablets case\n"
)


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    path = tmp_path / "catalog.csv"
    path.write_text(CATALOG_CSV, encoding="utf-8")
    return read_catalog(path)


def _gs1(gtin: str, expiry: str = "281231") -> str:
    return f"01{gtin}17{expiry}10LOT1{GS}21SN1"


@pytest.mark.parametrize(
    ("raw", "level"),
    [
        ("81234560000000011234", "unit"),
        ("81234570000000011234", "middle"),
        ("81234580000000011234", "case"),
        ("81234590000000011234", "unknown"),
        (_gs1(UNIT_GTIN), "unit"),
        (_gs1(CASE_GTIN), "case"),
        ("00157035381410375177", "pallet"),
    ],
)
def test_level_from_the_catalog(catalog: Catalog, raw: str, level: str) -> None:
    assert assess(raw, op="receive", catalog=catalog, today=TODAY).level == level


@pytest.mark.parametrize("op", ["dispense", "sale"])
@pytest.mark.parametrize(
    "raw", ["81234570000000011234", "81234580000000011234", _gs1(CASE_GTIN), "00157035381410375177"]
)
def test_middle_case_and_pallet_are_refused_at_unit_only_operations(
    catalog: Catalog, op: Operation, raw: str
) -> None:
    decision = assess(raw, op=op, catalog=catalog, today=TODAY)
    assert (decision.accepted, decision.reason) == (False, "level_not_allowed")


@pytest.mark.parametrize("op", sorted(set(OPERATIONS) - {"dispense", "sale"}))
def test_every_level_is_accepted_elsewhere(catalog: Catalog, op: Operation) -> None:
    for raw in ("81234580000000011234", "00157035381410375177", _gs1(CASE_GTIN, "200101")):
        assert assess(raw, op=op, catalog=catalog, today=TODAY).accepted


@pytest.mark.parametrize("op", ["dispense", "sale"])
def test_expired_at_dispense_and_sale(catalog: Catalog, op: Operation) -> None:
    decision = assess(_gs1(UNIT_GTIN, "260614"), op=op, catalog=catalog, today=TODAY)
    assert (decision.accepted, decision.reason) == (False, "expired")
    assert decision.fields["expiry"] == "2026-06-14"


def test_expiring_today_is_still_accepted(catalog: Catalog) -> None:
    assert assess(_gs1(UNIT_GTIN, "260615"), op="sale", catalog=catalog, today=TODAY).accepted


def test_expiry_day_00_counts_as_the_last_day(catalog: Catalog) -> None:
    assert assess(_gs1(UNIT_GTIN, "260600"), op="sale", catalog=catalog, today=TODAY).accepted


def test_ma_expiry_is_judged_too(catalog: Catalog) -> None:
    decision = assess(
        "MA.156.M0.100761.21234561.S1.E260101", op="dispense", catalog=catalog, today=TODAY
    )
    assert decision.reason == "expired"


def test_accepted_decision_shape(catalog: Catalog) -> None:
    out = assess(
        "]C081234560000000011234\r\n", op="dispense", catalog=catalog, today=TODAY
    ).as_check_output("en")
    assert out == {
        "input": "]C081234560000000011234\r\n",
        "accepted": True,
        "kind": "cn20",
        "level": "unit",
        "reason": None,
        "message": "Valid trace code",
        "fields": {"product_code": "8123456", "serial": "000000001"},
    }


def test_refusal_carries_kind_fields_and_the_specific_message(catalog: Catalog) -> None:
    decision = assess("6901234567892", op="dispense", catalog=catalog, today=TODAY)
    assert (decision.kind, decision.reason, decision.variant) == (
        "commodity",
        "commodity_barcode",
        "69",
    )
    assert "69" in decision.message("en")
    assert decision.message("zh") != decision.message("en")
    # A later refusal for another reason (e.g. the store failing) drops the specific sentence.
    assert decision.refused("buffer_full").message("en") == MESSAGES["buffer_full"][1]


def test_refused_sscc_is_still_a_pallet(catalog: Catalog) -> None:
    decision = assess("00157035381410375178", op="receive", catalog=catalog, today=TODAY)
    assert (decision.reason, decision.kind, decision.level) == ("bad_check_digit", "sscc", "pallet")


def test_gs_replacement_is_passed_to_normalisation(catalog: Catalog) -> None:
    raw = f"01{UNIT_GTIN}10LOT1~21SN1"
    # Without the setting, "~" is read as data: no GS1 character (CSET 82).
    assert assess(raw, op="receive", catalog=catalog, today=TODAY).reason == "bad_charset"
    decision = assess(raw, op="receive", catalog=catalog, today=TODAY, gs_replacement="~")
    assert decision.accepted
    assert decision.text == f"01{UNIT_GTIN}10LOT1{GS}21SN1"


def test_a_megabyte_of_garbage_is_refused_with_a_bounded_record(catalog: Catalog) -> None:
    decision = assess("\x00" * 1_000_000, op="dispense", catalog=catalog, today=TODAY)
    assert decision.reason == "bad_length"
    assert len(decision.text) <= 128
