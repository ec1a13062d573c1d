"""Corruption, missing keys, and the high-water mark that keeps seq from ever being reused."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.config import Config
from agent.store import DB_FILE, OutboxReader, Sealer, Store, keys
from agent.store.hwm import BLOCK, HWM_FILE, LAST_FILE
from drivers import RawScan
from tests.harness import InProcessAgent, agent_config, load_config
from tests.store.conftest import make_events, stored


def test_a_corrupted_database_is_quarantined_and_numbering_continues_above_the_mark(
    tmp_path: Path, sealer: Sealer, signing_key: Ed25519PrivateKey
) -> None:
    stored(tmp_path, sealer, signing_key, 5)
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


def _copy_db(src: Path, dst: Path) -> None:
    dst.mkdir()
    for name in (DB_FILE, f"{DB_FILE}-wal", f"{DB_FILE}-shm"):
        if (src / name).exists():
            (dst / name).write_bytes((src / name).read_bytes())


def test_an_older_copy_of_the_database_never_reuses_a_number(
    tmp_path: Path, sealer: Sealer, signing_key: Ed25519PrivateKey
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    store = Store(data, sealer)
    events, head = make_events(store, signing_key, 5)
    store.write(events, head)
    _copy_db(data, tmp_path / "backup")  # an IT person's copy, taken at seq 5
    more, head = make_events(store, signing_key, 5)
    store.write(more, head)  # seq 6..10 are published with this content
    store.close()
    for name in (DB_FILE, f"{DB_FILE}-wal", f"{DB_FILE}-shm"):
        (data / name).unlink(missing_ok=True)
        if (tmp_path / "backup" / name).exists():
            (data / name).write_bytes((tmp_path / "backup" / name).read_bytes())
    restored = Store(data, sealer)
    try:
        # 6..10 were used: numbering resumes above the mark, which covers every number used
        assert restored.head.seq == int((data / HWM_FILE).read_text()) >= 10
        assert any("older copy" in a for a in restored.alerts)
    finally:
        restored.close()


def test_the_last_committed_number_keeps_a_restart_gapless(
    tmp_path: Path, sealer: Sealer, signing_key: Ed25519PrivateKey
) -> None:
    store = Store(tmp_path, sealer)
    for _ in range(3):
        events, head = make_events(store, signing_key, 4)
        store.write(events, head)
    store.close()
    again = Store(tmp_path, sealer)
    assert again.head.seq == 12  # the mark is a reservation ahead; the database is current
    assert again.alerts == []
    again.close()


@pytest.mark.parametrize(
    "damage", [b"\xff\xfe1024\n", b"", b"-5\n", b"9" * 400, b"12 34\n", b"\x00" * 10]
)
def test_a_damaged_mark_neither_stops_the_start_nor_reuses_numbers(
    tmp_path: Path, sealer: Sealer, signing_key: Ed25519PrivateKey, damage: bytes
) -> None:
    stored(tmp_path, sealer, signing_key, 7)
    (tmp_path / HWM_FILE).write_bytes(damage)
    again = Store(tmp_path, sealer)
    try:
        assert again.head.seq == 7
        assert any(HWM_FILE in a for a in again.alerts)
        more, head = make_events(again, signing_key, 1)
        again.write(more, head)
        assert int((tmp_path / HWM_FILE).read_text()) >= 8  # written anew
    finally:
        again.close()


def test_a_damaged_last_number_falls_back_on_the_mark(
    tmp_path: Path, sealer: Sealer, signing_key: Ed25519PrivateKey
) -> None:
    stored(tmp_path, sealer, signing_key, 3)
    (tmp_path / LAST_FILE).write_bytes(b"00000000000000000003 deadbeef\n")  # torn: bad checksum
    again = Store(tmp_path, sealer)
    assert again.head.seq == 3  # the mark is within a block: the database is current
    again.close()
