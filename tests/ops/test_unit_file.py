"""The systemd unit: notify type with a watchdog, and a sandbox scoring at most 2.0 exposure."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[2] / "systemd" / "tracescan.service"


def service_section() -> dict[str, list[str]]:
    """`[Service]` keys with every value (systemd allows repeated keys)."""
    out: dict[str, list[str]] = {}
    section = ""
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line
            continue
        if section == "[Service]":
            key, _, value = line.partition("=")
            out.setdefault(key, []).append(value)
    return out


def test_unit_is_notify_with_watchdog_and_restart() -> None:
    svc = service_section()
    assert svc["Type"] == ["notify"]
    assert int(svc["WatchdogSec"][0]) >= 2  # the main loop ticks every 0.5 s
    assert svc["Restart"] == ["on-failure"]
    assert svc["User"] == ["tracescan"]
    assert svc["ProtectSystem"] == ["strict"]
    assert svc["NoNewPrivileges"] == ["yes"]
    assert svc["CapabilityBoundingSet"] == [""]
    assert "/var/lib/tracescan" in svc["ReadWritePaths"][0]
    # systemd's own parser must accept the file as INI too (no stray syntax).
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.read_string(UNIT.read_text())
    assert parser.has_section("Install")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_security_exposure_at_most_2() -> None:
    done = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--no-pager", str(UNIT)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    found = re.search(r"Overall exposure level for \S+: ([0-9.]+)", done.stdout)
    if found is None:
        pytest.skip(f"this systemd-analyze cannot assess offline: {done.stderr.strip()[:200]}")
    assert float(found.group(1)) <= 2.0, done.stdout
