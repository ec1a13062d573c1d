"""`tracescan export`: decrypts the local record, verifies it, reports breaks."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

from agent.store import DB_FILE
from hardware_sim.workload import unit_codes
from tests.cli.conftest import one_line_message, scanned, tracescan


def _export(cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", "export", "--config", str(cfg), *args],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_export_jsonl_and_csv_verify_the_chain(station: Path, tmp_path: Path) -> None:
    cfg = station
    codes = unit_codes(12)
    scanned(cfg, [*codes[:6], "6901234567892", *codes[6:]])
    r = _export(cfg)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    events = [ln["record"] for ln in lines if ln["topic"] == "event"]
    assert [e["code"] for e in events] == codes
    assert [e["seq"] for e in events] == list(range(1, 13))
    assert any(ln["topic"] == "reject" for ln in lines)
    assert "signatures and chain verified" in r.stderr
    r = _export(cfg, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert [row["code"] for row in rows if row["topic"] == "event"] == codes


def test_export_reports_a_deleted_record(station: Path, tmp_path: Path) -> None:
    cfg = station
    scanned(cfg, unit_codes(5))
    conn = sqlite3.connect(tmp_path / "data" / DB_FILE)
    conn.execute("DELETE FROM outbox WHERE seq = 3")
    conn.commit()
    conn.close()
    r = _export(cfg)
    assert r.returncode == 1
    assert "seq 4: expected 3" in r.stderr


def test_export_reports_a_tampered_record(station: Path, tmp_path: Path) -> None:
    cfg = station
    scanned(cfg, unit_codes(3))
    conn = sqlite3.connect(tmp_path / "data" / DB_FILE)
    (body,) = conn.execute("SELECT body FROM outbox WHERE seq = 2").fetchone()
    conn.execute(
        "UPDATE outbox SET body = ? WHERE seq = 2", (body[:-1] + bytes([body[-1] ^ 0x40]),)
    )
    conn.commit()
    conn.close()
    r = _export(cfg)
    assert r.returncode == 1
    assert "does not authenticate" in r.stderr


def test_keygen_rotation_keeps_old_records_exportable(station: Path, tmp_path: Path) -> None:
    cfg = station
    codes = unit_codes(4)
    scanned(cfg, codes[:2])
    r = subprocess.run(
        [sys.executable, "-m", "agent", "keygen", "--config", str(cfg), "--rotate-data-key"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "keys" / "data-2.key").stat().st_mode & 0o777 == 0o600
    scanned(cfg, codes[2:])
    r = _export(cfg)
    assert r.returncode == 0, r.stderr
    assert [json.loads(x)["record"]["code"] for x in r.stdout.splitlines()] == codes


def test_since_that_is_not_a_date_is_a_usage_error(station: Path, tmp_path: Path) -> None:
    cfg = station
    codes = unit_codes(2)
    scanned(cfg, codes)
    r = _export(cfg, "--since", "yesterday")
    assert r.returncode == 2
    one_line_message(r, "--since", "'yesterday' is not a date", "YYYY-MM-DD")
    assert r.stdout == ""
    r = _export(cfg, "--since", "2020-01-01")
    assert r.returncode == 0, r.stderr
    assert len([x for x in r.stdout.splitlines() if '"topic": "event"' in x]) == 2
    r = _export(cfg, "--since", "2999-01-01T00:00+08:00")
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""


def test_export_on_a_station_that_never_ran_says_so(station: Path) -> None:
    r = tracescan("export", "--config", str(station))
    assert r.returncode == 78
    one_line_message(r, "device.data_dir", "no record store", str(station.parent / "data"))
    assert not (station.parent / "keys").exists()  # and it made no keys on the way


def test_export_when_data_dir_is_a_file(station: Path) -> None:
    (station.parent / "data").write_text("not a directory")
    r = tracescan("export", "--config", str(station))
    assert r.returncode == 78
    one_line_message(r, "device.data_dir", "is a file, not a directory")
