"""A full disk refuses new scans loudly (buffer_full) and recovers by itself.

Uses a real size-limited filesystem (a 2 MiB tmpfs mounted for the test) so SQLite meets a
real ENOSPC. Mounting needs root; elsewhere the test is skipped with that reason.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers import RawScan
from tests.harness import InProcessAgent, agent_config, load_config


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "small"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a size-limited tmpfs needs root")
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True
    )
    if r.returncode != 0:
        pytest.skip(f"cannot mount a size-limited tmpfs here: {r.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_enospc_refuses_scans_keeps_confirmed_ones_and_recovers(
    tmp_path: Path, small_fs: Path
) -> None:
    doc = agent_config(tmp_path, device={"data_dir": str(small_fs / "data")})
    config = load_config(tmp_path, doc)
    agent = InProcessAgent(config)
    seen = agent.collect.seen
    filler = small_fs / "filler"
    with filler.open("wb") as fh, contextlib.suppress(OSError):
        fh.write(b"\0" * (2 * 1024 * 1024))  # leave almost nothing
    serial = 0
    for _ in range(200):
        serial += 1
        agent.process([RawScan(f"8123456{serial:09d}1234", "t", 1.7e9)])
        if agent.collect.last().reason == "buffer_full":
            break
    refused = [d for _, d, _ in seen if d.reason == "buffer_full"]
    assert refused, "the full disk was never noticed"
    confirmed = [(d, s) for _, d, s in seen if d.accepted]
    assert all(s is not None for _, s in confirmed)
    # space returns: scanning works again without a restart, numbering continues gapless
    filler.unlink()
    serial += 1
    agent.process([RawScan(f"8123456{serial:09d}1234", "t", 1.7e9)])
    _, last, seq = seen[-1]
    assert last.accepted
    assert seq == len(confirmed) + 1
    agent.close()
    again = InProcessAgent(config)
    assert again.agent.store.head.seq == seq
    again.close()
