"""One agent per data directory: an exclusive lock on `data_dir/agent.lock` for the process's life.

Two agents on one configuration would both write the store, fight over the MQTT client id
(each pushing the other off the broker) and the second would lose the local API. The lock is
`flock(2)` on a file inside `data_dir`: the kernel releases it when the process ends, however
it ends (kill -9, a power cut), so no stale lock ever blocks the next start and nothing has to
be cleaned up. The file holds the owner's pid, for the message the second agent prints.

Readers (`tracescan status`, `export`) do not take the lock: they read the store through their
own read-only connections while the agent runs. `holder()` tells a command whether an agent
is running on a data directory (even with its local API off).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from agent.store.outbox import StoreError

LOCK_FILE: Final = "agent.lock"
#: A probe (`holder`) holds a shared lock for microseconds: a starting agent that meets one
#: tries again for this long before it concludes that another agent runs.
_ACQUIRE_PATIENCE: Final = 1.0


@dataclass(frozen=True, slots=True)
class Holder:
    """The agent that holds a data directory; `pid` None when it has not written it yet."""

    pid: int | None


class AlreadyRunning(StoreError):
    """Another agent holds the data directory."""

    def __init__(self, data_dir: Path, holder: Holder) -> None:
        who = f"another agent (pid {holder.pid})" if holder.pid else "another agent"
        super().__init__(
            f"{who} is already running on device.data_dir {data_dir}: two agents on one store "
            "would both write it and push each other off the broker; stop that one "
            "(systemctl stop tracescan) or give this one its own data_dir"
        )
        self.data_dir = data_dir
        self.holder = holder


class InstanceLock:
    """The exclusive lock of one running agent on its data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = data_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> InstanceLock:
        """Take the lock and write our pid; `AlreadyRunning` when another agent holds it."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise StoreError(f"cannot open the lock file {self.path}: {exc.strerror}") from exc
        deadline = time.monotonic() + _ACQUIRE_PATIENCE
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise AlreadyRunning(self.data_dir, Holder(_read_pid(self.path))) from None
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        """Give the lock up (the kernel does it anyway when the process ends)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


def holder(data_dir: Path) -> Holder | None:
    """The agent running on `data_dir`, or None when none is."""
    try:
        fd = os.open(data_dir / LOCK_FILE, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:  # no lock file: no agent ever ran here (or we may not look)
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return Holder(_read_pid(data_dir / LOCK_FILE))
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _read_pid(path: Path) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        pid = int(path.read_text(encoding="ascii").strip())
        return pid if pid > 0 else None
    return None
