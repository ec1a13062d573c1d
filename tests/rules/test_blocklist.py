"""agent/rules/blocklist.py: codes, batches and products, the first matching entry wins."""

from __future__ import annotations

from agent.rules.blocklist import BlockEntry, Blocklist


def test_blocklist_reports_the_first_matching_entry_in_list_order() -> None:
    entries = (
        BlockEntry("product", "8123456", "product recall"),
        BlockEntry("code", "81234560000000011234", "stolen pack"),
        BlockEntry("batch", "B1", "batch recall"),
        BlockEntry("code", "81234560000000011234", "listed twice"),
    )
    blocklist = Blocklist(3, entries)
    fields = {"product_code": "8123456", "serial": "000000001"}
    assert blocklist.match("81234560000000011234", fields) is entries[0]
    assert blocklist.match("81234560000000011234", {}) is entries[1]
    assert blocklist.match("x", {"batch": "B1", "gtin": "8123456"}) is entries[0]
    assert blocklist.match("x", {"batch": "B1"}) is entries[2]
    assert blocklist.match("x", {"batch": "B2", "product_code": "8123457"}) is None
    assert Blocklist().match("x", fields) is None
    assert blocklist == Blocklist(3, entries)
