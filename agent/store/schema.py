"""The outbox schema and its migrations (sqlite-utils), keyed on `PRAGMA user_version`.

Each migration runs in one transaction together with the version bump, so a crash mid-way
leaves the previous version intact. Add migrations at the end; never edit a released one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Final

import sqlite_utils

#: The page size new stores are created with. Every commit writes whole pages to the WAL, so a
#: single-scan commit costs (pages touched × page size); 1 KiB pages keep that under 4 KiB per
#: scan (measured in bench/bench_store.py) at no cost to group-commit throughput that matters.
PAGE_SIZE: Final = 1024


def _v1(db: sqlite_utils.Database) -> None:
    db["outbox"].create(  # type: ignore[union-attr]
        {"rid": int, "topic": str, "seq": int, "body": bytes, "created": float, "sent": float},
        pk="rid",
        not_null={"topic", "body", "created"},
    )
    # The uplink's only query: unsent rows in rid order. A partial index stays as small as the backlog.
    db.execute("CREATE INDEX outbox_unsent ON outbox (rid) WHERE sent IS NULL")
    # Per-code state for de-duplication. `mac` is HMAC-SHA256(index key, code): never plaintext.
    db.execute(
        "CREATE TABLE codes (mac BLOB PRIMARY KEY, last_op TEXT NOT NULL, count INTEGER NOT NULL,"
        " last_seq INTEGER NOT NULL, updated REAL NOT NULL) WITHOUT ROWID"
    )
    db["meta"].create({"key": str, "value": str}, pk="key")  # type: ignore[union-attr]


def _v2(db: sqlite_utils.Database) -> None:
    # Named, sealed blobs: master data sets (versioned) and the scanners' context.
    db["named"].create(  # type: ignore[union-attr]
        {"name": str, "version": int, "body": bytes, "updated": float},
        pk="name",
        not_null={"version", "body", "updated"},
    )


MIGRATIONS: Final[tuple[Callable[[sqlite_utils.Database], None], ...]] = (_v1, _v2)


def prepare(conn: sqlite3.Connection) -> None:
    """Connection settings; the page size only takes on a database with nothing in it yet."""
    if conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0] == 0:
        conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
    conn.execute("PRAGMA journal_mode = WAL")
    # FULL: in WAL mode every commit is fsynced before it returns; a confirmed scan survives
    # a power cut. (NORMAL may lose the last commits on power loss.)
    conn.execute("PRAGMA synchronous = FULL")


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the database to the newest schema; returns the version it is at."""
    version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    db = sqlite_utils.Database(conn)
    for number, step in enumerate(MIGRATIONS[version:], start=version + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            step(db)
            conn.execute(f"PRAGMA user_version = {number}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        version = number
    return version
