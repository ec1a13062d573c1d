"""`tracescan` itself: man-page grade help for every subcommand, --version, -v anywhere."""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time

import pytest

import agent
from agent.cli import parser
from tests.cli.conftest import tracescan

SUBCOMMANDS = (
    "run",
    "check",
    "status",
    "mode",
    "ack",
    "export",
    "pubkey",
    "keygen",
    "pki",
    "sheet",
    "calibrate",
)


def subparsers(p: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (action,) = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def test_every_subcommand_is_there() -> None:
    assert tuple(subparsers(parser())) == SUBCOMMANDS


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_help_says_what_exit_statuses_and_an_example(name: str) -> None:
    r = tracescan(name, "--help")
    assert r.returncode == 0
    text = r.stdout
    assert text.startswith(f"usage: tracescan {name}")
    assert "exit status:\n  0 " in text
    assert f"examples:\n  tracescan {name}" in text
    sub = subparsers(parser())[name]
    assert sub.description is not None
    assert len(sub.description) > 60  # a description, not a title
    for p in [sub, *subparsers(sub).values()] if name in ("pki", "calibrate") else [sub]:
        for action in p._actions:
            assert action.help, (name, action.option_strings or action.dest)


def test_version() -> None:
    r = tracescan("--version")
    assert r.returncode == 0
    assert r.stdout.strip() == f"tracescan {agent.__version__}"


def test_verbose_before_or_after_the_subcommand() -> None:
    p = parser()
    assert p.parse_args(["-v", "status"]).verbose is True
    assert p.parse_args(["status", "-v"]).verbose is True
    assert p.parse_args(["status", "--verbose", "--json"]).verbose is True
    assert p.parse_args(["status"]).verbose is False
    r = tracescan("check", "-v", "81234560000000011234")
    assert r.returncode == 0


def test_unknown_subcommand_is_a_usage_error() -> None:
    r = tracescan("frobnicate")
    assert r.returncode == 2
    assert "invalid choice: 'frobnicate'" in r.stderr


def test_ctrl_c_in_a_command_is_a_message_and_130() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent", "check", "-"],  # waits for codes on stdin
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None
    proc.stdin.write("81234560000000011234\n")
    proc.stdin.flush()
    time.sleep(1.0)  # well inside the read loop (no timing is asserted)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert err == "tracescan: interrupted\n"
