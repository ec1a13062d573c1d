"""A virtual serial barcode scanner on a real pty pair.

The agent opens the pty's slave side exactly as it would `/dev/ttyACM0`; the simulator writes
scans into the master side. `unplug()` / `replug()` make the device vanish and come back
(a new pty behind the same symlink), as a USB scanner does when its cable is pulled.
"""

from __future__ import annotations

import contextlib
import os
import time
import tty
from pathlib import Path
from types import TracebackType


class VirtualSerialScanner:
    """A pty whose slave path stands in for the scanner's serial device."""

    def __init__(self, link: Path | None = None, terminator: bytes = b"\r\n") -> None:
        self.link = link
        self.terminator = terminator
        self.master = -1
        self.slave = -1
        self.slave_path = ""
        self.plug()

    @property
    def port(self) -> str:
        """The path to give the agent: the stable symlink if one was asked for."""
        return str(self.link) if self.link else self.slave_path

    def plug(self) -> None:
        """Create the pty (and point the symlink at it)."""
        self.master, self.slave = os.openpty()
        tty.setraw(
            self.slave
        )  # no echo, no CR->NL translation: bytes pass as the scanner sent them
        self.slave_path = os.ttyname(self.slave)
        if self.link:
            tmp = self.link.with_name(self.link.name + ".tmp")
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            tmp.symlink_to(self.slave_path)
            tmp.replace(self.link)

    def unplug(self) -> None:
        """Close both ends: the reader sees the device disappear."""
        if self.link:
            with contextlib.suppress(FileNotFoundError):
                self.link.unlink()
        for fd in (self.master, self.slave):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.master = self.slave = -1

    def replug(self) -> None:
        """Unplug, then plug a fresh pty in behind the same link."""
        self.unplug()
        self.plug()

    def write(self, data: bytes) -> None:
        """Raw bytes, exactly as given (partial scans, garbage, split terminators)."""
        view = memoryview(data)
        while view:
            n = os.write(self.master, view)
            view = view[n:]

    def scan(self, code: str | bytes) -> None:
        """Type one code followed by the terminator."""
        raw = code.encode("utf-8") if isinstance(code, str) else code
        self.write(raw + self.terminator)

    def scan_many(self, codes: list[str], rate: float = 0.0) -> None:
        """Type codes, `rate` per second (0 = as fast as possible)."""
        interval = 1.0 / rate if rate > 0 else 0.0
        for code in codes:
            self.scan(code)
            if interval:
                time.sleep(interval)

    def close(self) -> None:
        """Remove the device for good."""
        self.unplug()

    def __enter__(self) -> VirtualSerialScanner:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
