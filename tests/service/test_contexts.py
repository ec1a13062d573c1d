"""agent/service/contexts.py: scanner contexts survive restarts; a bad persisted one is set aside."""

from __future__ import annotations

import json

import pytest

from agent.service.contexts import BLOB_NAME, Contexts, valid_doc
from agent.store import NamedBlob


def _restored(data: bytes) -> Contexts:
    ctx = Contexts("dispense", None)
    ctx.restore(NamedBlob(BLOB_NAME, 0, data))
    return ctx


def test_a_context_round_trips() -> None:
    ctx = Contexts("dispense", None)
    dock = ctx.get("dock")
    dock.op, dock.doc = "receive", "DN-1"
    again = _restored(ctx.blob().data)
    assert again.snapshot()["dock"] == {"op": "receive", "doc": "DN-1", "held": None}
    assert again.default.op == "dispense"


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b"[" * 100_000,  # deeper than the JSON parser recurses
        b"[]",
        b'"a string"',
        json.dumps({"dock": {"op": "sell", "doc": None}}).encode(),
        json.dumps({"dock": {"op": "receive", "doc": {"a": 1}}}).encode(),
        json.dumps({"dock": {"op": "receive", "doc": "x" * 65}}).encode(),
        json.dumps({"dock": {"op": "receive", "doc": "line\nbreak"}}).encode(),
        json.dumps({"dock": "receive"}).encode(),
        json.dumps({"dock": None}).encode(),
    ],
)
def test_a_malformed_persisted_context_is_set_aside(data: bytes) -> None:
    ctx = _restored(data)
    assert ctx.find("dock") is None
    assert ctx.get("dock").op == "dispense"  # the config's default, a sane start


def test_good_contexts_survive_beside_a_bad_one() -> None:
    data = {"dock": {"op": "receive", "doc": 5}, "till": {"op": "sale", "doc": "RX-9"}}
    ctx = _restored(json.dumps(data).encode())
    assert ctx.find("dock") is None
    assert ctx.snapshot()["till"]["doc"] == "RX-9"


def test_document_ids() -> None:
    assert valid_doc("PO-1001")
    assert valid_doc("单据-1")
    assert not any(valid_doc(v) for v in ("", " ", "a" * 65, "a\x1b[2J", None, 7, ["x"]))
