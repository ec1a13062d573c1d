"""The sd_notify protocol: tell systemd we are ready, and keep its watchdog fed.

One datagram per message on the AF_UNIX socket named by `NOTIFY_SOCKET` (a path, or an
abstract-namespace name written with a leading `@`). Outside systemd the variable is unset and
every call is a no-op, so the daemon needs no special case when run by hand or in tests.
Implemented here rather than with a binding (python-systemd, sdnotify): it is a dozen lines of
socket code and keeps a C dependency off small devices.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger(__name__)


class SystemdNotifier:
    """Sends `READY=1`, `WATCHDOG=1`, `STOPPING=1` and `STATUS=...` to the service manager."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        name = env.get("NOTIFY_SOCKET", "")
        # systemd addresses abstract sockets with '@'; the kernel wants a NUL byte there.
        self.address: str | None = ("\0" + name[1:] if name.startswith("@") else name) or None
        self.watchdog_interval = _watchdog_interval(env)

    @property
    def enabled(self) -> bool:
        """Whether a service manager is listening."""
        return self.address is not None

    def send(self, *fields: str) -> bool:
        """Send `KEY=value` fields in one datagram; False (logged once at debug) on failure."""
        if self.address is None:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto("\n".join(fields).encode(), self.address)
        except OSError as exc:
            log.debug("notify: cannot reach the service manager (%s)", exc)
            return False
        return True

    def ready(self, status: str = "") -> bool:
        """The store is open and scanners are being read."""
        return self.send("READY=1", *([f"STATUS={status}"] if status else []))

    def watchdog(self) -> bool:
        """The main loop is alive."""
        return self.send("WATCHDOG=1")

    def stopping(self) -> bool:
        """Shutdown has begun."""
        return self.send("STOPPING=1")

    def status(self, text: str) -> bool:
        """A one-line status shown by `systemctl status`."""
        return self.send(f"STATUS={text}")


def _watchdog_interval(env: Mapping[str, str]) -> float | None:
    """Seconds between pings: half of `WATCHDOG_USEC` (as sd_watchdog_enabled advises).

    `WATCHDOG_PID`, when set, must be our pid: a variable inherited from a parent is not ours.
    """
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not (usec.isascii() and usec.isdigit()) or int(usec) == 0:
        return None
    if pid and pid != str(os.getpid()):
        return None
    return int(usec) / 2e6
