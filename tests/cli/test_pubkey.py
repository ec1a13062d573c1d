"""`tracescan pubkey`: keys on first use, never new keys beside a store sealed with old ones."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

from hardware_sim.workload import unit_codes
from tests.cli.conftest import one_line_message, scanned, tracescan


def test_first_use_creates_the_keys_and_prints_the_public_key(station: Path) -> None:
    r = tracescan("pubkey", "--config", str(station))
    assert r.returncode == 0, r.stderr
    assert len(base64.b64decode(r.stdout.strip())) == 32
    assert (station.parent / "keys" / "signing.key").stat().st_mode & 0o777 == 0o600
    again = tracescan("pubkey", "--config", str(station))
    assert again.stdout == r.stdout


def test_lost_keys_beside_a_store_are_not_replaced(station: Path) -> None:
    scanned(station, unit_codes(1))
    shutil.rmtree(station.parent / "keys")
    for command in ("pubkey", "keygen"):
        r = tracescan(command, "--config", str(station))
        assert r.returncode == 78
        one_line_message(r, "keys:", "restore key_dir from backup")
        assert not (station.parent / "keys").exists()  # new keys would orphan the records
