"""回流: a unit sold at two devices with no customer_return between is an alert at once."""

from __future__ import annotations

import datetime as dt

from agent.records.envelope import rfc3339
from central import ledger, report
from tests.central.conftest import Publisher, RunLedger, TestDevice, count, enroll, progress
from tests.harness import wait_until

CODE = "81234560000012341234"
T0 = 1_790_000_000.0


def _kinds(db: ledger.Connection) -> list[tuple[str, str, int, str]]:
    with db.transaction():
        rows = db.execute("SELECT kind, device, seq, message FROM alerts ORDER BY id").fetchall()
    return [(r[0], r[1], int(r[2]), r[3]) for r in rows]


def test_a_unit_sold_at_two_devices_is_a_returned_to_market_alert(
    db: ledger.Connection, run_ledger: RunLedger, publisher: Publisher
) -> None:
    a, b, c = TestDevice("dev-a", seed=1), TestDevice("dev-b", seed=2), TestDevice("dev-c", seed=3)
    enroll(db, a, b, c)
    run_ledger()
    publisher.send(a.topic(), [a.event(op="sale", code=CODE, ts=rfc3339(T0))])
    assert wait_until(lambda: progress(db, a) == (1, 1))
    assert _kinds(db) == []
    publisher.send(b.topic(), [b.event(op="dispense", code=CODE, ts=rfc3339(T0 + 60))])
    assert wait_until(lambda: count(db, "SELECT count(*) FROM alerts") == 1)
    kind, device, seq, message = _kinds(db)[0]
    assert (kind, device, seq) == ("returned_to_market", "dev-b", 1)
    assert "回流" in message
    assert "dev-a" in message

    # a customer return in between makes the next sale legitimate
    publisher.send(b.topic(), [b.event(op="customer_return", code=CODE, ts=rfc3339(T0 + 120))])
    publisher.send(c.topic(), [c.event(op="sale", code=CODE, ts=rfc3339(T0 + 180))])
    assert wait_until(lambda: progress(db, c) == (1, 1))
    assert count(db, "SELECT count(*) FROM alerts") == 1


def test_arrival_order_does_not_matter_scan_time_does(
    db: ledger.Connection, run_ledger: RunLedger, publisher: Publisher
) -> None:
    a, b = TestDevice("dev-a", seed=1), TestDevice("dev-b", seed=2)
    enroll(db, a, b)
    run_ledger()
    sale_a = a.event(op="sale", code=CODE, ts=rfc3339(T0))
    ret_a = a.event(op="customer_return", code=CODE, ts=rfc3339(T0 + 10))
    sale_b = b.event(op="sale", code=CODE, ts=rfc3339(T0 + 20))
    # the return arrives last (a backlog), but it happened between the two sales
    publisher.send(b.topic(), [sale_b])
    publisher.send(a.topic(), [sale_a])
    assert wait_until(lambda: progress(db, a) == (1, 1))
    publisher.send(a.topic(), [ret_a])
    assert wait_until(lambda: progress(db, a) == (2, 2))
    # sale_a stored after sale_b with no return stored yet: that was a true alert at the time
    assert [k[0] for k in _kinds(db)] == ["returned_to_market"]
    # a later sale elsewhere, after the return, raises nothing new
    c = TestDevice("dev-c", seed=3)
    enroll(db, c)
    publisher.send(c.topic(), [c.event(op="dispense", code="81234560000099991234")])
    assert wait_until(lambda: progress(db, c) == (1, 1))
    assert count(db, "SELECT count(*) FROM alerts") == 1


def test_an_undone_sale_does_not_count_and_same_device_repeats_are_the_devices_rule(
    db: ledger.Connection, run_ledger: RunLedger, publisher: Publisher
) -> None:
    a, b = TestDevice("dev-a", seed=1), TestDevice("dev-b", seed=2)
    enroll(db, a, b)
    run_ledger()
    publisher.send(a.topic(), [a.event(op="sale", code=CODE, ts=rfc3339(T0))])
    publisher.send(a.topic(), [a.event(op="sale", code=CODE, ts=rfc3339(T0 + 1), void_of=1)])
    publisher.send(a.topic(), [a.event(op="dispense", code=CODE, ts=rfc3339(T0 + 2))])
    assert wait_until(lambda: progress(db, a) == (3, 3))
    # dev-a sold it again itself (a split pack, say): not central's alert
    assert count(db, "SELECT count(*) FROM alerts") == 0
    publisher.send(b.topic(), [b.event(op="sale", code=CODE, ts=rfc3339(T0 + 3))])
    assert wait_until(lambda: count(db, "SELECT count(*) FROM alerts") == 1)
    assert _kinds(db)[0][:3] == ("returned_to_market", "dev-b", 1)


def test_the_report_counts_the_alert_per_device_and_day_and_names_it(
    db: ledger.Connection, run_ledger: RunLedger, publisher: Publisher
) -> None:
    a, b = TestDevice("dev-a", seed=1), TestDevice("dev-b", seed=2)
    enroll(db, a, b)
    run_ledger()
    publisher.send(a.topic(), [a.event(op="sale", code=CODE)])
    publisher.send(b.topic(), [b.event(op="sale", code=CODE)])
    publisher.send(b.topic("reject"), [b.record("reject", reason="commodity_barcode")])
    assert wait_until(lambda: count(db, "SELECT count(*) FROM alerts") == 1)
    assert wait_until(lambda: count(db, "SELECT count(*) FROM device_records") == 1)
    figures = report.gather(db, dt.datetime.now(dt.UTC).date(), "UTC")
    by_device = {d["device"]: d for d in figures["devices"]}
    flagged = by_device["dev-b"]
    assert (flagged["events"], flagged["confirmed_through"], flagged["alerts"]) == (1, 1, 1)
    assert flagged["alerts_by_kind"] == {"returned_to_market": 1}
    assert flagged["days"][0]["alerts"] == 1
    assert flagged["rejects_by_reason"] == {"commodity_barcode": 1}
    assert flagged["scan_rate"] == 0.5
    assert by_device["dev-a"]["alerts"] == 0
    assert "回流 returned_to_market 1" in report.render(figures)


def test_a_gs1_pack_sold_as_its_datamatrix_and_as_its_digital_link_is_one_pack(
    db: ledger.Connection, run_ledger: RunLedger, publisher: Publisher
) -> None:
    a, b = TestDevice("dev-a", seed=1), TestDevice("dev-b", seed=2)
    enroll(db, a, b)
    run_ledger()
    pack = {"kind": "gs1", "gtin": "06901234567892", "serial": "SN9"}
    matrix = "01069012345678921728123110LOT1\x1d21SN9"
    link_text = "010690123456789221SN9\x1d1728123110LOT1"  # the same pack, another order
    publisher.send(a.topic(), [a.event(op="sale", code=matrix, ts=rfc3339(T0), **pack)])
    assert wait_until(lambda: progress(db, a) == (1, 1))
    publisher.send(b.topic(), [b.event(op="sale", code=link_text, ts=rfc3339(T0 + 60), **pack)])
    assert wait_until(lambda: count(db, "SELECT count(*) FROM alerts") == 1)
    assert _kinds(db)[0][:3] == ("returned_to_market", "dev-b", 1)
