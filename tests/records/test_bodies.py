"""agent/records/bodies.py: every record body the device publishes, built in one place."""

from __future__ import annotations

import uuid

from agent.records.bodies import (
    Origin,
    alert_body,
    header,
    record_id,
    reject_body,
    report_body,
    scan_body,
    void_body,
)
from agent.rules.decision import Decision
from agent.rules.operations import BILL_TYPES, OPERATIONS

ORIGIN = Origin("station-01", "site-01")
UNIT = Decision(
    "81234560000000011234",
    True,
    "cn20",
    "unit",
    None,
    "81234560000000011234",
    {"product_code": "8123456", "serial": "000000001"},
)


def test_record_ids_are_random_version_4_uuids() -> None:
    ids = {record_id() for _ in range(1000)}
    assert len(ids) == 1000
    for text in ids:
        parsed = uuid.UUID(text)
        assert (str(parsed), parsed.version, parsed.variant) == (text, 4, uuid.RFC_4122)


def test_every_record_starts_with_the_same_header() -> None:
    head = header(ORIGIN, 1_800_000_000.25)
    assert head["v"] == 1
    assert (head["device"], head["site"]) == ("station-01", "site-01")
    assert head["ts"] == "2027-01-15T08:00:00.250+00:00"
    for body in (
        scan_body(ORIGIN, 0.0, "sale", "RX-1", UNIT),
        alert_body(ORIGIN, 0.0, "tampered", 3),
        report_body(ORIGIN, 0.0, doc="D", supplier="S", manifest_version=1, reconciliation={}),
    ):
        assert set(head) <= set(body)
        assert body["id"] != head["id"]


def test_a_scan_carries_its_operations_bill_type_without_changing_the_decision() -> None:
    for op in OPERATIONS:
        body = scan_body(ORIGIN, 0.0, op, None, UNIT)
        assert body["fields"] == {**UNIT.fields, "bill_type": BILL_TYPES[op]}
        assert (body["op"], body["code"], body["kind"], body["level"]) == (
            op,
            UNIT.text,
            "cn20",
            "unit",
        )
    assert "bill_type" not in UNIT.fields


def test_void_and_reject_bodies() -> None:
    void = void_body(ORIGIN, 0.0, "dispense", "RX-1", UNIT, void_of=7)
    assert void["fields"]["void_of"] == 7
    assert void["doc"] == "RX-1"
    refused = UNIT.refused("blocked")
    reject = reject_body(ORIGIN, 0.0, "dispense", None, refused, lang="en")
    assert reject["reason"] == "blocked"
    assert reject["message"] == refused.message("en")
    assert "seq" not in reject
    assert "prev" not in reject
