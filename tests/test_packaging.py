"""What the wheel installs: the agent, its drivers and the central ledger, not the simulators
(hardware_sim)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from setuptools import find_packages  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parent.parent


def test_the_wheel_holds_agent_drivers_and_central_only() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    include = project["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = find_packages(str(ROOT), include=include)
    assert {p.split(".")[0] for p in packages} == {"agent", "central", "drivers"}
    assert "agent.cli" in packages
    assert project["project"]["scripts"] == {
        "tracescan": "agent.cli:main",
        "tracescan-central": "central.cli:main",
    }
