"""The sequence high-water mark, kept outside the database.

If the database is ever lost or quarantined, numbering resumes above this mark, so a `seq`
is never reused for different content. The mark is a reservation: it is raised in blocks
(one atomic write + fsync per `BLOCK` events), before any event using the numbers commits.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Final

HWM_FILE: Final = "seq.hwm"
BLOCK: Final = 1024


class HighWaterMark:
    """Atomically persisted upper bound of every `seq` ever handed out."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / HWM_FILE
        self.value = self._read()

    def _read(self) -> int:
        try:
            text = self.path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return 0
        return int(text) if text.isdigit() else 0

    def reserve(self, seq: int) -> None:
        """Make sure `seq` is covered, raising the mark by a block if needed (fsynced)."""
        if seq <= self.value:
            return
        new = seq + BLOCK
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, f"{new}\n".encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        dfd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
        self.value = new

    def discard_tmp(self) -> None:
        """Remove a half-written reservation left by a crash."""
        with contextlib.suppress(FileNotFoundError):
            self.path.with_name(self.path.name + ".tmp").unlink()
