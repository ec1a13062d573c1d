"""agent/daemon.py: what the composed agent costs a small device (memory: see bench/bench_memory.py).

On a Pi, every library imported at start-up stays in memory for the process's life: biip alone
is ~22 MB, numpy (through sqlite-utils) ~15 MB, OpenCV ~30 MB. A station with serial scanners
must run without them until a scan needs one: biip is loaded by the first GS1 scan.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from hardware_sim.serial_scanner import VirtualSerialScanner
from hardware_sim.workload import unit_codes
from tests.harness import config_file

HEAVY = ("biip", "cv2", "numpy", "sqlite_utils", "zxingcpp", "prometheus_client", "evdev")

#: The daemon's start-up path in a child process, with a line protocol on stdin: `modules`
#: prints which of HEAVY are loaded (as JSON), `stop` stops the agent as SIGTERM would.
PROBE = """\
import json, sys, threading
from pathlib import Path
from agent.config import load
from agent.daemon import Agent

HEAVY = {heavy!r}
agent = Agent(load(Path(sys.argv[1])))

def commands():
    agent.scanners[0].state.open_event.wait(20)
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() == "modules":
            print(json.dumps([m for m in HEAVY if m in sys.modules]), flush=True)
        else:
            break
    agent.stop.set()

threading.Thread(target=commands, daemon=True).start()
sys.exit(agent.run())
"""


class _Probe:
    def __init__(self, config: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", PROBE.format(heavy=HEAVY), str(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def line(self, starting: str = "") -> str:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(starting):
                return line.strip()
        raise AssertionError(
            f"the agent ended: {self.proc.stderr.read() if self.proc.stderr else ''}"
        )

    def modules(self) -> list[str]:
        assert self.proc.stdin is not None
        self.proc.stdin.write("modules\n")
        self.proc.stdin.flush()
        loaded: list[str] = json.loads(self.line("["))
        return loaded


def test_a_serial_station_runs_without_biip_numpy_or_opencv_until_a_gs1_scan(
    tmp_path: Path,
) -> None:
    with VirtualSerialScanner(tmp_path / "ttyScanner") as scanner:
        probe = _Probe(config_file(tmp_path, serial_port=scanner.port))
        try:
            assert probe.line("ready") == "ready"
            scanner.scan(unit_codes(1)[0])
            assert probe.line("✔").startswith("✔ [counter] seq=1 cn20/")
            scanner.scan("]C0" + unit_codes(1, start=2)[0])  # a Code 128 AIM id is no GS1 one
            assert probe.line("✔").startswith("✔ [counter] seq=2 cn20/")
            assert probe.modules() == []

            scanner.scan("]d2010691234567890217301231" + "10AB12\x1d21SN123")
            assert probe.line("✔").startswith("✔ [counter] seq=3 gs1/")
            assert probe.modules() == ["biip"]  # loaded by the scan that needed it
        finally:
            probe.proc.communicate("stop\n", timeout=20)
    assert probe.proc.returncode == 0
