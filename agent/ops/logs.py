"""Logging set-up: logfmt lines with syslog priorities under journald, readable lines elsewhere.

Under systemd, stderr is a stream to journald (`JOURNAL_STREAM` names its device and inode).
journald stamps time, pid and unit itself and reads a leading `<N>` as the syslog priority,
so each line is `<N>level=warning logger=agent.uplink msg="..."`: filterable with
`journalctl -p warning` and parseable as key=value without a native-protocol dependency.
Run by hand, lines carry a timestamp instead. Codes never appear in log lines at INFO or
above (worker feedback goes to stdout, not to the log).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Final

from agent.rules.limits import shown

_PRIORITY: Final = {
    logging.DEBUG: 7,
    logging.INFO: 6,
    logging.WARNING: 4,
    logging.ERROR: 3,
    logging.CRITICAL: 2,
}


class JournalFormatter(logging.Formatter):
    """`<priority>level=... logger=... msg="..."` (plus `exc="..."` for tracebacks)."""

    def format(self, record: logging.LogRecord) -> str:
        """One logfmt line; newlines inside values are escaped so a record stays one line."""
        prio = _PRIORITY.get(record.levelno, 6)
        parts = [
            f"level={record.levelname.lower()}",
            f"logger={record.name}",
            f"thread={record.threadName}",
            # JSON escapes C0 controls and quotes; `shown` also the C1 ones (\x9b is a CSI too)
            f"msg={shown(json.dumps(record.getMessage(), ensure_ascii=False))}",
        ]
        if record.exc_info:
            parts.append(f"exc={json.dumps(self.formatException(record.exc_info))}")
        return f"<{prio}>" + " ".join(parts)


class ConsoleFormatter(logging.Formatter):
    """`time level logger: message` for a terminal, the message escaped to one line: a value
    from outside (a topic, a master-data reason, a file name) cannot forge a log line."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        """The line with the message part escaped (a traceback still follows on its lines)."""
        record.message = shown(record.message)
        return super().formatMessage(record)


def stderr_is_journal(environ: dict[str, str] | None = None) -> bool:
    """Whether stderr is the journald stream systemd connected (not just inherited)."""
    value = (environ if environ is not None else dict(os.environ)).get("JOURNAL_STREAM", "")
    dev, _, ino = value.partition(":")
    if not (dev.isascii() and dev.isdigit() and ino.isascii() and ino.isdigit()):
        return False
    try:
        st = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError):
        return False
    return st.st_dev == int(dev) and st.st_ino == int(ino)


def setup(verbose: bool = False) -> None:
    """Configure the root logger for the agent."""
    handler = logging.StreamHandler(sys.stderr)
    if stderr_is_journal():
        handler.setFormatter(JournalFormatter())
    else:
        handler.setFormatter(ConsoleFormatter())
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler])
