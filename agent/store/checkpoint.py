"""WAL checkpoints in the writer's idle moments, off the confirm path.

SQLite checkpoints on the committing connection: once the WAL holds `WAL_AUTOCHECKPOINT` frames
(schema.py), one commit also copies them into the database file and fsyncs both files. With
512-byte pages and ~5.5 frames per scan that is one scan in ~370 that waits for ~1 MiB of
writes and two extra fsyncs: a few milliseconds on a VM disk, far more on an SD card.

A `Checkpointer` thread with its own connection runs `PRAGMA wal_checkpoint(PASSIVE)` once the
writer has been quiet for `QUIET_S` after a write. A passive checkpoint takes no lock the writer
or the readers need, and starting it only in a pause keeps its I/O from competing with a commit
a worker is waiting for. At a human scanning pace the WAL is copied in every pause and never
reaches the autocheckpoint, so no scan pays for a checkpoint. Under a sustained burst there is
no pause: the autocheckpoint on the writer still bounds the WAL.
Checkpoints are crash-safe whichever connection runs them.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import Final

log = logging.getLogger(__name__)

QUIET_S: Final = 0.2  # a pause this long after a write is a pause


class Checkpointer:
    """A thread that copies committed WAL frames into the database file when writes pause."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._wake = threading.Event()  # set by the first write after a checkpoint
        self._closing = threading.Event()
        self._dirty = False
        self._last_write = 0.0
        self._failing: str | None = None
        self.runs = 0  # checkpoints attempted (`Store.pause_checkpoints`)
        self._thread = threading.Thread(target=self._run, name="store-checkpoint", daemon=True)
        self._thread.start()

    def wrote(self) -> None:
        """The writer committed (writer thread; two assignments, no lock, no syscall)."""
        self._last_write = time.monotonic()
        if not self._dirty:
            self._dirty = True
            self._wake.set()

    def close(self) -> None:
        """Stop the thread and release its connection (the writer's close checkpoints last)."""
        self._closing.set()
        self._wake.set()
        self._thread.join()

    def _run(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=True)
        try:
            while True:
                self._wake.wait()
                self._wake.clear()
                while not self._closing.is_set():
                    quiet = time.monotonic() - self._last_write
                    if quiet >= QUIET_S:
                        break
                    self._closing.wait(QUIET_S - quiet)
                if self._closing.is_set():
                    return
                # A write landing from here on sets `_dirty` again and wakes the next round.
                self._dirty = False
                self._checkpoint(conn)
        finally:
            conn.close()

    def _checkpoint(self, conn: sqlite3.Connection) -> None:
        self.runs += 1
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as exc:  # e.g. a full disk: the WAL still holds everything
            if str(exc) != self._failing:
                log.warning("store: checkpoint failed (%s); will retry after the next write", exc)
            self._failing = str(exc)
        else:
            if self._failing is not None:
                log.info("store: checkpoints work again")
            self._failing = None
