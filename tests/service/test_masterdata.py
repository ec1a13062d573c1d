"""agent/service/masterdata.py: local and central sets kept apart, merged for the guards,
re-validated when read back from the store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.records.downlink import Refused
from agent.records.signing import sign_reject
from agent.rules.catalog import Catalog, CatalogEntry
from agent.rules.decision import Decision
from agent.rules.masterdata import MasterKind, MasterSet, parse
from agent.service.masterdata import MasterData, MasterGate, blob_name
from agent.store import NamedBlob
from tests.harness import InProcessAgent, agent_config, load_config


def _unit(code: str) -> Decision:
    return Decision(code, True, "unknown", "unknown", None, code)


def _set(kind: MasterKind, obj: dict[str, Any]) -> MasterSet:
    return parse(kind, json.dumps(obj), "test")


def _block(code: str, version: int) -> MasterSet:
    return _set("blocklist", {"version": version, "entries": [{"type": "code", "value": code}]})


def test_a_local_file_does_not_shadow_a_central_recall() -> None:
    md = MasterData(Catalog())
    # A file's version is its modification time (~1.7e9): far above any central version.
    assert md.offer(_block("LOCAL", 1_764_000_000), "local").applied
    assert md.offer(_block("RECALL", 3), "central").applied
    assert md.blocked(_unit("RECALL")) is not None
    assert md.blocked(_unit("LOCAL")) is not None
    assert md.versions("central")["blocklist"] == 3
    assert md.versions("local")["blocklist"] == 1_764_000_000
    # Within one source, only a newer version replaces the set in force.
    refused = md.offer(_block("OTHER", 2), "central")
    assert (refused.applied, refused.current) == (False, 3)
    assert md.blocked(_unit("OTHER")) is None


def test_central_catalog_relations_and_manifests_win_over_local_ones() -> None:
    base = Catalog({"8123456": CatalogEntry("8123456", "unit", 1, "file")})
    md = MasterData(base)
    md.offer(_set("relations", {"version": 5, "relations": {"P": ["L1"], "Q": ["L2"]}}), "local")
    md.offer(_set("relations", {"version": 1, "relations": {"P": ["C1", "C2"]}}), "central")
    central_catalog = {"version": 1, "entries": [{"code": "8123456", "level": "case", "ratio": 9}]}
    md.offer(_set("catalog", central_catalog), "central")
    assert md.expand("P", None) == ("C1", "C2")
    assert md.expand("Q", None) == ("L2",)
    assert md.catalog.entries["8123456"].level == "case"
    md.offer(_set("manifest", {"version": 9, "doc": "D", "codes": ["L"]}), "local")
    md.offer(_set("manifest", {"version": 1, "doc": "D", "codes": ["C"]}), "central")
    manifest = md.manifest("D")
    assert manifest is not None
    assert manifest.codes == ("C",)


def test_a_persisted_set_that_no_longer_passes_is_set_aside_with_an_alert() -> None:
    md = MasterData(Catalog())
    good = _block("OK", 2)
    md.restore(
        [
            NamedBlob(
                blob_name(good, "central"),
                2,
                json.dumps({"version": 2, "entries": [{"type": "code", "value": "OK"}]}).encode(),
            ),
            NamedBlob("master/central/relations", 9, b"[" * 100_000),
            NamedBlob("master/central/blocklist-typo", 1, b"{}"),
            NamedBlob(
                "master/blocklist",
                1_700_000_000,
                json.dumps(
                    {"version": 1_700_000_000, "entries": [{"type": "code", "value": "LEGACY"}]}
                ).encode(),
            ),
            NamedBlob(
                "master/central/catalog",
                2**63 - 1,
                json.dumps({"version": 2**63 - 1, "entries": []}).encode(),
            ),
        ]
    )
    assert md.blocked(_unit("OK")) is not None
    # A set stored before the sources were kept apart is local: it cannot shadow central ones.
    assert md.blocked(_unit("LEGACY")) is not None
    assert md.versions("local")["blocklist"] == 1_700_000_000
    assert len(md.alerts) == 3
    assert all("set aside" in a for a in md.alerts)


def test_a_bad_persisted_set_is_an_alert_at_start_not_a_crash(tmp_path: Path) -> None:
    config = load_config(tmp_path, agent_config(tmp_path, api={"enabled": False}))
    agent = InProcessAgent(config)
    agent.master("blocklist", {"version": 1, "entries": [{"type": "code", "value": "X"}]})
    agent.close()
    import sqlite3  # noqa: PLC0415 - the test tampers with the store the way a bug could

    with sqlite3.connect(tmp_path / "data" / "tracescan.db") as conn:
        conn.execute(
            "UPDATE named SET body = substr(body, 1, 20) WHERE name = 'master/central/blocklist'"
        )
        conn.execute(
            "INSERT INTO named (name, version, body, updated) VALUES ('context', 1, x'00', 0)"
            " ON CONFLICT (name) DO UPDATE SET body = x'00'"
        )
    conn.close()
    again = InProcessAgent(config)
    try:
        alerts = again.agent.store.alerts
        assert any("'master/central/blocklist' is unreadable" in a for a in alerts)
        assert any("'context' is unreadable" in a for a in alerts)
        assert again.agent.pipeline.masterdata.blocked(_unit("X")) is None  # not trusted
        assert again.scan("81234560000000011234").accepted
    finally:
        again.close()


def _envelope(key: Ed25519PrivateKey, kind: str, body: dict[str, Any], version: int = 1) -> bytes:
    return sign_reject(
        {
            "v": 1,
            "kind": kind,
            "version": version,
            "site": "s1",
            "device": "d1",
            "issued": "2026-11-26T08:00:00+00:00",
            "body": body,
        },
        key,
    )


def test_the_gate_takes_only_what_the_pinned_key_signed_for_this_topic() -> None:
    central = Ed25519PrivateKey.generate()
    gate = MasterGate(central.public_key(), allow_unsigned=True, site="s1", device="d1")
    value = gate.open("blocklist", _envelope(central, "blocklist", {"entries": []}, 4))
    assert value.version == 4
    with pytest.raises(Refused, match="misaddressed"):
        gate.open("catalog", _envelope(central, "blocklist", {"entries": []}))
    with pytest.raises(Refused, match="misaddressed"):
        gate.open("manifest/DN-2", _envelope(central, "manifest", {"doc": "DN-1"}))
    with pytest.raises(Refused, match="unsigned"):  # allow_unsigned does not apply with a key
        gate.open("blocklist", b'{"version": 9, "entries": []}')
    with pytest.raises(Refused, match="malformed"):
        gate.open("nonsense\x1b[2J", b"{}")
    unkeyed = MasterGate(None, allow_unsigned=False, site="s1", device="d1")
    with pytest.raises(Refused, match="no \\[central\\] public_key"):
        unkeyed.open("blocklist", b'{"version": 9, "entries": []}')
