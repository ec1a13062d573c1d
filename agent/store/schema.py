"""The outbox schema and its migrations, keyed on `PRAGMA user_version`.

Each migration runs in one transaction together with the version bump, so a crash mid-way
leaves the previous version intact. Add migrations at the end; never edit a released one.
The migrations were first written with sqlite-utils; they are plain SQL now, the very
statements it generated (tests/store/test_outbox.py checks the resulting schema), because
sqlite-utils and the numpy it pulls in cost ~14 MB of RSS for the process's whole life, and
every new store (the first start of every device) ran them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Final

#: The page size new stores are created with. Every commit writes whole pages to the WAL and the
#: checkpoint copies them again, so a single-scan commit costs (pages touched × page size) twice.
#: A scan touches page 1 (the file grows), the outbox leaf and the page holding the sealed body,
#: and a random page of the per-code state: with 512-byte pages that is ~3.5 KiB per scan, with
#: 1 KiB pages ~6 KiB and with 4 KiB pages 12-16 KiB (bench/bench_store.py). A sealed event
#: (~500 bytes) spills into one overflow page at this size, which leaves ~10 rows per leaf.
#: Stores created before this kept the page size they were created with.
PAGE_SIZE: Final = 512

#: WAL pages after which a commit also checkpoints (SQLite's autocheckpoint). SQLite's default,
#: 1000, assumes 4 KiB pages (4 MiB of WAL); at 512 bytes it would copy the WAL every ~180 scans,
#: and that commit's ~2 ms of extra writes and fsyncs lands in the slowest 1 % of confirms. 2048
#: pages (1 MiB) makes it one scan in ~370. The daemon also checkpoints in its pauses
#: (checkpoint.py), so at a scanning pace with pauses no commit reaches this.
WAL_AUTOCHECKPOINT: Final = 2048


def _v1(conn: sqlite3.Connection) -> None:
    conn.execute(
        'CREATE TABLE "outbox" (\n   "rid" INTEGER PRIMARY KEY,\n   "topic" TEXT NOT NULL,\n'
        '   "seq" INTEGER,\n   "body" BLOB NOT NULL,\n   "created" REAL NOT NULL,\n'
        '   "sent" REAL\n)'
    )
    # The uplink's only query: unsent rows in rid order. A partial index stays as small as the backlog.
    conn.execute("CREATE INDEX outbox_unsent ON outbox (rid) WHERE sent IS NULL")
    # Per-code state for de-duplication. `mac` is HMAC-SHA256(index key, code): never plaintext.
    conn.execute(
        "CREATE TABLE codes (mac BLOB PRIMARY KEY, last_op TEXT NOT NULL, count INTEGER NOT NULL,"
        " last_seq INTEGER NOT NULL, updated REAL NOT NULL) WITHOUT ROWID"
    )
    conn.execute('CREATE TABLE "meta" (\n   "key" TEXT PRIMARY KEY,\n   "value" TEXT\n)')


def _v2(conn: sqlite3.Connection) -> None:
    # Named, sealed blobs: master data sets (versioned) and the scanners' context.
    conn.execute(
        'CREATE TABLE "named" (\n   "name" TEXT PRIMARY KEY,\n   "version" INTEGER NOT NULL,\n'
        '   "body" BLOB NOT NULL,\n   "updated" REAL NOT NULL\n)'
    )


def _v3(conn: sqlite3.Connection) -> None:
    # Rows are no longer updated when sent: acknowledgements are appended as runs of row ids
    # (agent/store/acks.py). Existing sent rows become runs of consecutive ids stamped with the
    # latest send time in the run, so retention keeps them at least as long as before.
    conn.execute(
        "CREATE TABLE acked (n INTEGER PRIMARY KEY, lo INTEGER NOT NULL, hi INTEGER NOT NULL,"
        " at REAL NOT NULL)"
    )
    conn.execute(
        "INSERT INTO acked (lo, hi, at) SELECT MIN(rid), MAX(rid), MAX(sent) FROM"
        " (SELECT rid, sent, rid - ROW_NUMBER() OVER (ORDER BY rid) AS island FROM outbox"
        "  WHERE sent IS NOT NULL) GROUP BY island ORDER BY MIN(rid)"
    )
    conn.execute("DROP INDEX outbox_unsent")
    conn.execute("ALTER TABLE outbox DROP COLUMN sent")


def _v4(conn: sqlite3.Connection) -> None:
    # With a central ledger, an event is done only when central acknowledged it; the broker's
    # PUBACK is kept apart, in runs of the same shape (agent/store/acks.py), so the uplink
    # knows what waits for central's ack and status can tell uploaded from confirmed.
    conn.execute(
        "CREATE TABLE published (n INTEGER PRIMARY KEY, lo INTEGER NOT NULL,"
        " hi INTEGER NOT NULL, at REAL NOT NULL)"
    )
    # No index on seq: it would add an index page to every scan's commit (~0.8 KiB handed to
    # the kernel per scan, over the 4 KiB budget). Acks and resends find their rows by scanning
    # the rows not yet done, whose `topic` and `seq` sit in the leaf pages before the body.


MIGRATIONS: Final[tuple[Callable[[sqlite3.Connection], None], ...]] = (_v1, _v2, _v3, _v4)


def prepare(conn: sqlite3.Connection) -> None:
    """Connection settings; the page size only takes on a database with nothing in it yet."""
    if conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0] == 0:
        conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
    conn.execute("PRAGMA journal_mode = WAL")
    # FULL: in WAL mode every commit is fsynced before it returns; a confirmed scan survives
    # a power cut. (NORMAL may lose the last commits on power loss.)
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT}")


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the database to the newest schema; returns the version it is at."""
    version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    for number, step in enumerate(MIGRATIONS[version:], start=version + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            step(conn)
            conn.execute(f"PRAGMA user_version = {number}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        version = number
    return version
