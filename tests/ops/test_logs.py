"""Log lines for journald: syslog priority prefix and logfmt fields, one line per record."""

from __future__ import annotations

import logging
import os
import sys

import pytest

from agent.ops.logs import ConsoleFormatter, JournalFormatter, stderr_is_journal


def record(level: int, msg: str, *args: object) -> logging.LogRecord:
    """A log record as a logger would make it."""
    return logging.LogRecord("agent.uplink", level, __file__, 1, msg, args, None)


def test_journal_line_has_priority_and_fields() -> None:
    line = JournalFormatter().format(record(logging.WARNING, "lost %s\nagain", "link"))
    assert line.startswith("<4>level=warning logger=agent.uplink ")
    assert 'msg="lost link\\nagain"' in line
    assert "\n" not in line
    assert JournalFormatter().format(record(logging.ERROR, "x")).startswith("<3>")


def test_journal_stream_must_be_our_stderr(capfd: pytest.CaptureFixture[str]) -> None:
    st = os.fstat(sys.stderr.fileno())
    assert stderr_is_journal({"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
    assert not stderr_is_journal({"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino + 1}"})
    assert not stderr_is_journal({})
    assert not stderr_is_journal({"JOURNAL_STREAM": f"\u00b2:{st.st_ino}"})  # no ValueError


def test_no_log_line_can_be_forged_by_a_value_from_outside() -> None:
    forged = "blocklist\n2026-11-26 08:00:00 ERROR agent: all scans lost\x1b[2J\x9b31m"
    for formatter in (ConsoleFormatter(), JournalFormatter()):
        line = formatter.format(record(logging.WARNING, "master data on %s refused", forged))
        assert "\n" not in line
        assert "\x1b" not in line
        assert "\x9b" not in line
        assert line.isprintable()
        assert "all scans lost" in line  # shown, escaped, not dropped
