"""The rules of the regime, enforced offline at the scan (no broker anywhere in this file)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.rules.masterdata import MasterDataError
from agent.service.documents import ReceiptReader
from agent.service.requests import (
    Acknowledge,
    ListContexts,
    SetMode,
)
from hardware_sim.workload import DEMO_CASE_PREFIX, DEMO_MIDDLE_PREFIX, trace_code, unit_codes
from tests.harness import InProcessAgent, agent_config, load_config

CATALOG = (
    "code,level,ratio,name,parts\n"
    "8123456,unit,1,Amoxicillin 24 caps,1\n"
    "8123457,middle,10,Amoxicillin x10,1\n"
    "8123458,case,100,Amoxicillin x100,1\n"
    "8222222,unit,1,Insulin pen (split x3),3\n"
    "8333333,unit,1,Ibuprofen,1\n"
)


Station = InProcessAgent


@pytest.fixture
def station(tmp_path: Path) -> Iterator[Callable[..., Station]]:
    """A counter in this process with a fixed clock; a second call restarts it on the same store."""
    (tmp_path / "catalog.csv").write_text(CATALOG)
    made: list[Station] = []

    def make(**sections: Any) -> Station:
        if made:
            made[-1].close()
        doc = agent_config(
            tmp_path,
            device_id="d1",
            site="s1",
            catalog=tmp_path / "catalog.csv",
            policy={"double_read_window": 0.5, **sections.pop("policy", {})},
            **sections,
        )
        s = InProcessAgent(load_config(tmp_path, doc), clock=1_800_000_000.0)
        made.append(s)
        return s

    yield make
    made[-1].close()


def test_events_carry_op_doc_and_bill_type(station: Callable[..., Station]) -> None:
    st = station()
    code = unit_codes(1)[0]
    st.scan("TSC:OP:receive")
    st.scan("TSC:DOC:PO-2026-001")
    assert st.scan(code).accepted
    event = st.records("event")[-1]
    assert (event["op"], event["doc"], event["fields"]["bill_type"]) == (
        "receive",
        "PO-2026-001",
        "102",
    )
    assert st.collect.notes[-1].startswith("receive")


def test_a_unit_dispensed_twice_is_refused_and_stops_the_line_until_acknowledged(
    station: Callable[..., Station],
) -> None:
    st = station()
    a, b = unit_codes(2)
    assert st.scan(a).accepted
    second = st.scan(a)
    assert second.reason == "already_recorded"
    assert "returned-to-market" in second.message("en")
    assert st.scan(b).reason == "awaiting_ack"  # the line is stopped
    st.scan("TSC:ACK")
    assert st.scan(b).accepted


def test_resale_is_detected_across_restarts(station: Callable[..., Station]) -> None:
    code = unit_codes(1)[0]
    assert station().scan(code).accepted
    assert station().scan(code).reason == "already_recorded"


def test_transitions_that_make_sense_are_allowed_and_nonsense_is_refused(
    station: Callable[..., Station],
) -> None:
    st = station()
    a, b = unit_codes(2)
    for op, expect in [
        ("receive", None),
        ("receive", "already_recorded"),
        ("dispense", None),
        ("customer_return", None),
        ("sale", None),
        ("customer_return", None),
        ("destroy", None),
        ("dispense", "state_conflict"),
    ]:
        st.request(Acknowledge(source="s1"))
        st.scan(f"TSC:OP:{op}")
        assert st.scan(a).reason == expect, op
    st.request(Acknowledge(source="s1"))
    st.scan("TSC:OP:stock_count")
    assert st.scan(a).accepted  # counting observes, whatever happened
    st.scan("TSC:OP:dispatch")
    assert st.scan(b).accepted
    st.scan("TSC:OP:return_to_supplier")
    assert st.scan(b).reason == "state_conflict"  # we no longer hold it


def test_split_pack_units_may_be_dispensed_up_to_their_parts(
    station: Callable[..., Station],
) -> None:
    st = station()
    pen = trace_code("8222222", 1)
    assert [st.scan(pen).accepted for _ in range(3)] == [True, True, True]
    assert st.scan(pen).reason == "already_recorded"
    st.scan("TSC:ACK")
    whole = trace_code("8333333", 1)
    assert st.scan(whole).accepted
    assert st.scan(whole).reason == "already_recorded"


def test_double_reads_are_absorbed_silently(station: Callable[..., Station]) -> None:
    st = station(operation={"mode": "receive"})
    code = unit_codes(1)[0]
    assert st.scan(code).accepted
    assert st.scan(code, gap=0.1).reason == "duplicate_scan"
    assert st.scan(code, source="s2", gap=0.1).reason == "already_recorded"  # another scanner
    assert len(st.records("event")) == 1
    assert st.agent.pipeline.counters["duplicate_scan"] == 1
    rejects = [r["reason"] for r in st.records("reject")]
    assert "duplicate_scan" not in rejects


def test_case_and_middle_codes_are_refused_at_dispensing_and_sale(
    station: Callable[..., Station],
) -> None:
    st = station()
    case, middle = trace_code(DEMO_CASE_PREFIX, 1), trace_code(DEMO_MIDDLE_PREFIX, 1)
    for op in ("dispense", "sale"):
        st.scan(f"TSC:OP:{op}")
        for code in (case, middle):
            st.request(Acknowledge(source="s1"))
            assert st.scan(code).reason == "level_not_allowed", (op, code)


def _relations(st: Station, relations: dict[str, list[str]], version: int = 1) -> None:
    data = json.dumps({"version": version, "relations": relations})
    assert st.master("relations", data)["ok"]


def test_case_without_relation_data_asks_for_units(station: Callable[..., Station]) -> None:
    st = station(operation={"mode": "receive"})
    assert st.scan(trace_code(DEMO_CASE_PREFIX, 9)).reason == "no_aggregation"


def test_mixed_and_partial_cases_expand_to_exactly_their_children(
    station: Callable[..., Station],
) -> None:
    st = station(operation={"mode": "receive"})
    mixed = trace_code(DEMO_CASE_PREFIX, 1)
    partial = trace_code(DEMO_CASE_PREFIX, 2)
    middle = trace_code(DEMO_MIDDLE_PREFIX, 1)
    amox = unit_codes(5, start=100)
    ibu = [trace_code("8333333", i) for i in range(1, 4)]
    lone = trace_code("8123456", 900)
    _relations(st, {mixed: [middle, *ibu], middle: amox, partial: [lone]})
    assert st.scan(mixed).accepted
    events = st.records("event")
    assert sorted(e["code"] for e in events) == sorted(amox + ibu)  # through the middle pack
    assert {e["fields"]["parent"] for e in events} == {mixed}
    assert st.scan(partial).accepted
    assert st.records("event")[-1]["code"] == lone
    # a unit of the case already received: scanning the case again is refused as a whole
    assert st.scan(mixed).reason == "already_recorded"
    assert len(st.records("event")) == 9


def test_manifest_mismatch_is_refused_and_reported_when_the_document_closes(
    station: Callable[..., Station],
) -> None:
    st = station(operation={"mode": "receive"})
    units = unit_codes(6, start=500)
    case = trace_code(DEMO_CASE_PREFIX, 7)
    manifest = {
        "version": 1,
        "doc": "DN-42",
        "supplier": "Acme Pharma",
        "codes": [*units[:3], case],
        "relations": {case: units[3:5]},
    }
    assert st.master("manifest", manifest)["ok"]
    st.scan("TSC:DOC:DN-42")
    assert st.scan(units[0]).accepted
    assert st.scan(case).accepted  # expands through the manifest's own relations
    stray = units[5]
    refused = st.scan(stray)
    assert refused.reason == "not_in_manifest"
    assert "DN-42" in refused.message("en")
    st.scan("TSC:END")
    report = st.records("report")[-1]
    assert report["doc"] == "DN-42"
    assert report["matched"] == sorted([units[0], *units[3:5]])
    assert report["missing"] == sorted(units[1:3])
    assert report["unexpected"] == [stray]
    assert report["counts"] == {"expected": 5, "matched": 3, "missing": 2, "unexpected": 1}
    assert report["products"]["8123456"] == {"expected": 5, "received": 4}


def test_manifest_warn_mode_accepts_and_flags(station: Callable[..., Station]) -> None:
    st = station(operation={"mode": "receive", "doc": "DN-7"}, policy={"manifest_mode": "warn"})
    units = unit_codes(2, start=700)
    st.master("manifest", {"version": 1, "doc": "DN-7", "codes": units[:1]})
    assert st.scan(units[1]).accepted
    assert st.records("event")[-1]["fields"]["manifest"] == "unexpected"


def test_blocklist_update_while_scanning_applies_at_once_and_survives_restart(
    station: Callable[..., Station],
) -> None:
    st = station()
    a, b, c = unit_codes(3, start=800)
    assert st.scan(a).accepted
    blocklist = {
        "version": 5,
        "entries": [{"type": "code", "value": b, "reason": "recall R-2026-11"}],
    }
    assert st.master("blocklist", blocklist)["applied"]
    refused = st.scan(b)
    assert refused.reason == "blocked"
    assert "R-2026-11" in refused.message("en")
    st.request(Acknowledge(source="s1"))
    older = {"version": 4, "entries": []}
    assert not st.master("blocklist", older)["applied"]
    st2 = station()
    assert st2.scan(b).reason == "blocked"
    product = {
        "version": 6,
        "entries": [{"type": "product", "value": "8123456", "reason": "batch recall"}],
    }
    st2.request(Acknowledge(source="s1"))
    st2.master("blocklist", product)
    assert st2.scan(c).reason == "blocked"


def test_bad_master_data_leaves_the_previous_set_in_force(station: Callable[..., Station]) -> None:
    st = station(operation={"mode": "receive"})
    case = trace_code(DEMO_CASE_PREFIX, 3)
    _relations(st, {case: unit_codes(2, start=900)})
    with pytest.raises(MasterDataError, match="must be a list of code strings"):
        st.master("relations", '{"version": 9, "relations": {"x": "not a list"}}')
    assert st.scan(case).accepted


def test_undo_voids_the_last_scan_with_a_signed_event(station: Callable[..., Station]) -> None:
    st = station()
    code = unit_codes(1, start=950)[0]
    assert st.scan(code).accepted
    st.scan("TSC:UNDO")
    events = st.records("event")
    assert [e["seq"] for e in events] == [1, 2]
    assert events[1]["fields"]["void_of"] == 1
    assert st.scan(code).accepted  # the undone dispense no longer counts


def test_receipt_lists_the_sale_documents_codes(station: Callable[..., Station]) -> None:
    st = station(operation={"mode": "sale"})
    codes = unit_codes(2, start=990)
    st.scan("TSC:DOC:R-1")
    for c in codes:
        st.scan(c)
    receipts = ReceiptReader(st.config.device.data_dir, st.agent.sealer)
    assert receipts.codes("R-1") == codes
    st.scan("TSC:UNDO")  # the last sale is voided: it leaves the receipt, now and after restart
    assert receipts.codes("R-1") == codes[:1]
    station()
    assert receipts.codes("R-1") == codes[:1]
    assert receipts.codes("R-2") == []


def test_context_survives_restart(station: Callable[..., Station]) -> None:
    st = station()
    st.scan("TSC:OP:receive", source="dock")
    st.scan("TSC:DOC:PO-9", source="dock")
    st2 = station()
    ctx = st2.request(ListContexts())["contexts"]["dock"]
    assert (ctx["op"], ctx["doc"]) == ("receive", "PO-9")


def test_a_station_switches_only_to_the_operations_it_allows(
    station: Callable[..., Station],
) -> None:
    st = station(operation={"allowed": ["dispense", "sale", "customer_return"]})
    st.scan("TSC:OP:stock_count")  # a sheet from the stock room, at the dispensing counter
    assert "not allowed" in st.collect.notes[-1]
    contexts = st.request(ListContexts())["contexts"]
    assert contexts.get("s1", contexts["*"])["op"] == "dispense"
    refused = st.request(SetMode(source="s1", op="stock_count"))
    assert refused["ok"] is False
    assert "[operation] allowed" in refused["error"]
    st.scan("TSC:OP:sale")
    assert st.request(ListContexts())["contexts"]["s1"]["op"] == "sale"


def test_a_gs1_pack_is_one_pack_however_its_code_is_spelled(
    station: Callable[..., Station],
) -> None:
    st = station(operation={"mode": "sale"})
    matrix = "0106901234567892172812311" + "0LOT1\x1d21SN77"
    link = "https://id.gs1.org/01/06901234567892/21/SN77?17=281231&10=LOT1"
    hri = "(01)06901234567892(21)SN77(17)281231(10)LOT1"
    assert st.scan(matrix).accepted
    st.scan(link)  # the QR beside the DataMatrix on the same pack, sold again
    assert (st.collect.last().reason, st.collect.last().variant) == ("already_recorded", "resale")
    st.request(Acknowledge(source="s1"))
    recall = {"version": 1, "entries": [{"type": "code", "value": "010690123456789221SN78"}]}
    st.master("blocklist", recall)
    assert st.scan(hri.replace("SN77", "SN78")).reason == "blocked"


def test_an_ack_for_every_scanner_releases_every_stopped_one(
    station: Callable[..., Station],
) -> None:
    st = station()
    case = trace_code(DEMO_CASE_PREFIX, 20)
    for source in ("s1", "s2"):
        assert st.scan(case, source=source).reason == "level_not_allowed"
    reply = st.request(Acknowledge())  # source "*": every scanner
    assert reply["released_by_source"] == {"s1": "level_not_allowed", "s2": "level_not_allowed"}
    assert st.request(Acknowledge())["message"] == "ack: nothing to acknowledge"
