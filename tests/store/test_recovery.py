"""Corruption, missing keys, and the high-water mark that keeps seq from ever being reused."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.config import Config
from agent.store import DB_FILE, OutboxReader, Sealer, Store, keys
from agent.store.hwm import BLOCK, HWM_FILE
from drivers import RawScan
from tests.harness import InProcessAgent, agent_config, load_config
from tests.store.conftest import make_events


def test_a_corrupted_database_is_quarantined_and_numbering_continues_above_the_mark(
    tmp_path: Path, sealer: Sealer, signing_key: Ed25519PrivateKey
) -> None:
    store = Store(tmp_path, sealer)
    events, head = make_events(store, signing_key, 5)
    store.write(events, head)
    store.close()
    (tmp_path / f"{DB_FILE}-wal").unlink(missing_ok=True)
    db = tmp_path / DB_FILE
    data = bytearray(db.read_bytes())
    data[0:16] = b"this is garbage!"
    db.write_bytes(bytes(data))
    again = Store(tmp_path, sealer)
    assert any("integrity" in a for a in again.alerts)
    assert any("high-water mark" in a for a in again.alerts)
    assert list(tmp_path.glob(f"{DB_FILE}.corrupt-*"))
    assert again.head.seq == 5 + BLOCK  # never reuses 6..: those numbers may exist in the lost file
    more, head2 = make_events(again, signing_key, 1)
    again.write(more, head2)
    assert again.head.seq == 6 + BLOCK
    again.close()


def test_quick_check_failure_inside_pages_is_caught(
    tmp_path: Path, sealer: Sealer, signing_key: Ed25519PrivateKey
) -> None:
    store = Store(tmp_path, sealer)
    events, head = make_events(store, signing_key, 300)
    store.write(events, head)
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    db = tmp_path / DB_FILE
    data = bytearray(db.read_bytes())
    for off in range(4096, len(data) - 2048, 1024):  # scribble over interior pages
        data[off + 8 : off + 40] = os.urandom(32)
    db.write_bytes(bytes(data))
    again = Store(tmp_path, sealer)
    assert again.alerts
    again.close()


def test_hwm_is_written_atomically_and_ahead_of_use(
    tmp_path: Path, sealer: Sealer, signing_key: Ed25519PrivateKey
) -> None:
    store = Store(tmp_path, sealer)
    events, head = make_events(store, signing_key, 3)
    store.write(events, head)
    assert int((tmp_path / HWM_FILE).read_text()) >= 3
    assert not list(tmp_path.glob("*.tmp"))
    store.close()


def _config(root: Path) -> Config:
    return load_config(root, agent_config(root))


def test_agent_refuses_to_start_when_keys_vanish_beside_existing_data(tmp_path: Path) -> None:
    config = _config(tmp_path)
    agent = InProcessAgent(config)
    agent.process([RawScan("81234560000000011234", "t", 1.7e9)])
    agent.close()
    for p in (tmp_path / "keys").iterdir():
        p.unlink()
    with pytest.raises(keys.KeyStoreError, match="restore"):
        InProcessAgent(config)


def test_agent_publishes_an_alert_record_after_quarantine(tmp_path: Path) -> None:
    config = _config(tmp_path)
    agent = InProcessAgent(config)
    agent.process([RawScan("81234560000000011234", "t", 1.7e9)])
    agent.close()
    (tmp_path / "data" / DB_FILE).write_bytes(b"not a database at all" * 100)
    (tmp_path / "data" / f"{DB_FILE}-wal").unlink(missing_ok=True)
    agent = InProcessAgent(config)
    agent.agent.writer.raise_alerts(agent.agent.store.alerts)
    ring = keys.load(tmp_path / "keys", create=False)
    reader = OutboxReader(tmp_path / "data", Sealer(ring.data))
    rows = reader.unsent(0, 10)
    assert [r.topic for r in rows] == ["alert", "alert"]
    assert "integrity" in json.loads(rows[0].payload)["alert"]
    reader.close()
    agent.process([RawScan("81234560000000021234", "t", 1.7e9)])
    assert agent.agent.store.head.seq == 2 + BLOCK  # the mark was 1 + BLOCK
    agent.close()
