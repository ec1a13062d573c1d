"""Start-up integrity check and quarantine of a damaged database.

A store that fails `PRAGMA quick_check` (or is not a database at all) is moved aside as
`tracescan.db.corrupt-<time>` together with its WAL and SHM files, for forensic recovery, and
the agent starts a fresh store instead of refusing to run: the scanning counter keeps working.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

log = logging.getLogger(__name__)


def check(path: Path) -> str | None:
    """None when the database is sound (or absent); otherwise what is wrong."""
    if not path.exists():
        return None
    try:
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            rows = conn.execute("PRAGMA quick_check").fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        return str(exc)
    result = [r[0] for r in rows]
    return None if result == ["ok"] else "; ".join(result[:5])


def quarantine(path: Path) -> list[Path]:
    """Move the database and its WAL/SHM aside; returns the new paths."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    moved: list[Path] = []
    for suffix in ("", "-wal", "-shm"):
        src = path.with_name(path.name + suffix)
        if src.exists():
            dst = src.with_name(f"{src.name}.corrupt-{stamp}")
            src.replace(dst)
            moved.append(dst)
    log.error(
        "store: %s failed its integrity check; moved aside as %s", path, ", ".join(map(str, moved))
    )
    return moved
