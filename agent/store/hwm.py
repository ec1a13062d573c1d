"""The sequence high-water mark, kept outside the database, and how a rolled-back database is
recognised.

If the database is ever lost, quarantined or replaced by an older copy, numbering resumes above
this mark, so a `seq` is never reused for different content. Two files beside the database:

- `seq.hwm` is the mark: an upper bound of every number that may have been committed. It is a
  reservation, raised in blocks (one atomic write + fsync per `BLOCK` events) before any event
  using the numbers commits.
- `seq.last` is the last number committed, written after every commit (one `pwrite`, no fsync:
  it is for telling an old database from a current one, not for surviving a power cut, and a
  lagging value only ever errs towards "current"). A database whose newest event is below it is
  an older copy: its next numbers were already used for other content.

Neither file can stop the agent from starting: an unreadable one is reported (`problems`) and
the numbering falls back on what is left, never below a number that may have been used.
"""

from __future__ import annotations

import contextlib
import os
import re
import zlib
from pathlib import Path
from typing import Final

HWM_FILE: Final = "seq.hwm"
LAST_FILE: Final = "seq.last"
BLOCK: Final = 1024
_MARK: Final = re.compile(rb"\s*([0-9]{1,19})\s*")
_LAST: Final = re.compile(rb"([0-9]{20}) ([0-9a-f]{8})\n")


def _crc(digits: bytes) -> bytes:
    return f"{zlib.crc32(digits):08x}".encode("ascii")


class HighWaterMark:
    """Atomically persisted upper bound of every `seq` ever handed out, and the last committed."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / HWM_FILE
        self.last_path = data_dir / LAST_FILE
        self.problems: list[str] = []
        self.value, self.readable = self._read_mark()
        self.last = self._read_last()
        self._last_fd: int | None = None

    def _read_mark(self) -> tuple[int, bool]:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return 0, True
        except OSError as exc:
            self.problems.append(f"{self.path}: unreadable ({exc.strerror or exc})")
            return 0, False
        match = _MARK.fullmatch(data[:64])
        if match is None:
            self.problems.append(f"{self.path}: not a sequence number (damaged)")
            return 0, False
        return int(match.group(1)), True

    def _read_last(self) -> int | None:
        try:
            data = self.last_path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError:
            return None
        match = _LAST.fullmatch(data)
        if match is None or _crc(match.group(1)) != match.group(2):
            return None  # torn or damaged: unknown, not zero
        return int(match.group(1))

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
        self.readable = True

    def committed(self, seq: int) -> None:
        """Note the last committed number (after the commit; best effort, never raises)."""
        digits = f"{seq:020d}".encode("ascii")
        try:
            if self._last_fd is None:
                self._last_fd = os.open(self.last_path, os.O_WRONLY | os.O_CREAT, 0o600)
            os.pwrite(self._last_fd, digits + b" " + _crc(digits) + b"\n", 0)
        except OSError:
            return  # a full disk must not fail a commit that already happened
        self.last = seq

    def close(self) -> None:
        """Release the `seq.last` file."""
        if self._last_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._last_fd)
            self._last_fd = None

    def discard_tmp(self) -> None:
        """Remove a half-written reservation left by a crash."""
        with contextlib.suppress(FileNotFoundError):
            self.path.with_name(self.path.name + ".tmp").unlink()
