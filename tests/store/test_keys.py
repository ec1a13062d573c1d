"""Key handling: created 0700/0600 outside the data, refused when exposed."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from agent.store import keys


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_first_run_creates_private_keys(tmp_path: Path) -> None:
    kd = tmp_path / "keys"
    ring = keys.load(kd)
    assert _mode(kd) == 0o700
    for name in (keys.SIGNING_FILE, keys.DATA_FILE, keys.INDEX_FILE):
        assert _mode(kd / name) == 0o600
    again = keys.load(kd)
    assert again.public_b64() == ring.public_b64()
    assert again.data == ring.data


def test_group_readable_key_is_refused(tmp_path: Path) -> None:
    kd = tmp_path / "keys"
    keys.load(kd)
    (kd / keys.DATA_FILE).chmod(0o640)
    with pytest.raises(keys.KeyStoreError, match="chmod 0600"):
        keys.load(kd)


def test_world_readable_key_dir_is_refused(tmp_path: Path) -> None:
    kd = tmp_path / "keys"
    keys.load(kd)
    kd.chmod(0o755)
    with pytest.raises(keys.KeyStoreError, match="chmod 0700"):
        keys.load(kd)


def test_truncated_key_is_refused(tmp_path: Path) -> None:
    kd = tmp_path / "keys"
    keys.load(kd)
    (kd / keys.SIGNING_FILE).write_bytes(b"short")
    with pytest.raises(keys.KeyStoreError, match="damaged"):
        keys.load(kd)


def test_missing_keys_not_created_when_told_not_to(tmp_path: Path) -> None:
    with pytest.raises(keys.KeyStoreError, match="does not exist"):
        keys.load(tmp_path / "nokeys", create=False)
