"""The layer contracts of ARCHITECTURE.md fail the build when broken (`make lint` runs them).

A copy of the packages gets one deliberately wrong import per contract; `lint-imports` must
name every contract it breaks. The clean copy must pass.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

WRONG = {
    "agent/rules/wrong_io.py": "import sqlite3\n",  # pure rules doing I/O
    "drivers/wrong_agent.py": "from agent.config import Config\n",  # a driver reaching up
    "agent/ops/wrong_root.py": "import agent.daemon\n",  # someone importing the root
    "agent/store/wrong_layer.py": "from agent.service import writer\n",  # a lower layer upwards
    "agent/ops/wrong_central.py": "import central.ledger\n",  # the device reaching the ledger
    "central/wrong_device.py": "from agent.service import pipeline\n",  # the ledger reaching in
}
CONTRACTS = [
    "agent's layers import only the layers below them",
    "the device never imports the central ledger",
    "the ledger never reaches into the device's writer or scanners",
    "codes and rules are pure: nothing that does I/O, keeps time or touches state",
    "drivers import only the scan contract, nothing of the agent",
    "only the store imports sqlite3",
    "nothing imports the composition root (daemon) but `tracescan run`",
]


def _copy(dest: Path) -> None:
    for package in ("agent", "central", "drivers"):
        shutil.copytree(
            ROOT / package, dest / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", dest / "pyproject.toml")


def _lint(where: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(where)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=where,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_tree_keeps_every_contract_and_each_wrong_import_breaks_its_own(
    tmp_path: Path,
) -> None:
    clean = tmp_path / "clean"
    _copy(clean)
    r = _lint(clean)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"Contracts: {len(CONTRACTS)} kept, 0 broken." in r.stdout

    broken = tmp_path / "broken"
    _copy(broken)
    for name, line in WRONG.items():
        (broken / name).write_text(line, encoding="utf-8")
    r = _lint(broken)
    assert r.returncode == 1
    assert f"Contracts: 0 kept, {len(CONTRACTS)} broken." in r.stdout, r.stdout
    for contract in CONTRACTS:
        assert f"{contract} BROKEN" in r.stdout
    for name in WRONG:
        assert name.removesuffix(".py").replace("/", ".") in r.stdout
