"""Memory on a Pi: the idle agent's RSS with one serial scanner vs bare python and bare paho.

All in one run, each in its own process, read from `/proc/PID/status` (VmRSS, VmHWM):

1. Baselines: a bare `python -c` (its peak RSS, `VmHWM`) and a bare paho-mqtt client
   connected to the same local mosquitto, idle with its network thread (`loop_start`).
2. Ours: `python -m agent run` with one serial scanner on a pty, the local API and the uplink
   connected; RSS once idle after one cn20 scan (target: <= 40 MB), then after a GS1 scan,
   which loads biip on demand. The agent's `sys.modules` is not visible from outside, so the
   lazy-import property is a test (tests/test_memory.py), not a figure here.
3. Where it would go: the RSS each library adds to a bare interpreter when imported alone
   (shared dependencies are counted in each), and the agent's own import.

Ratios are against the same-run baselines; RESULTS.md keeps the figures.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from hardware_sim.broker import LocalBroker
from hardware_sim.serial_scanner import VirtualSerialScanner
from hardware_sim.workload import unit_codes

IDLE_TARGET_MB = 40.0
IDLE_SETTLE_S = 3.0
GS1_SCAN = "]d2010691234567890217301231" + "10AB12\x1d21SN123"

#: Libraries the agent might load, each imported alone into a bare interpreter.
MODULES = (
    "sqlite3",
    "cryptography.hazmat.primitives.ciphers.aead",
    "cryptography.hazmat.primitives.asymmetric.ed25519",
    "paho.mqtt.client",
    "serial",
    "biip",
    "sqlite_utils",
    "numpy",
    "prometheus_client",
    "evdev",
    "cv2",
    "zxingcpp",
    "agent.codes",
    "agent.daemon",
)

CONFIG = """\
[device]
id = "mem-01"
site = "bench"
data_dir = "{root}/data"
key_dir = "{root}/keys"
lang = "en"

[[scanner]]
type = "serial"
name = "counter"
port = "{port}"

[mqtt]
host = "127.0.0.1"
port = {mqtt_port}
"""

PAHO_IDLE = """\
import sys, time
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-bare", protocol=mqtt.MQTTv5)
c.connect("127.0.0.1", int(sys.argv[1]), 30)
c.loop_start()
print("ready", flush=True)
time.sleep(600)
"""

RSS_OF_IMPORT = """\
import importlib, sys
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
before = rss()
if sys.argv[1] != "-":
    importlib.import_module(sys.argv[1])
print(rss() - before, rss())
"""


def _status_kb(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    raise KeyError(field)


def _mb(kb: float) -> str:
    return f"{kb / 1024:.1f} MB"


#: A bare interpreter reporting its own peak: `VmHWM` belongs to the memory the process has
#: since its exec. (`wait4`'s `ru_maxrss` also counts the forked parent's pages, so it read
#: 155 MB when this bench ran after the uplink bench in the same process.)
_OWN_PEAK = (
    "print(next(ln.split()[1] for ln in open('/proc/self/status') if ln.startswith('VmHWM:')))"
)


def bare_python() -> int:
    """Peak RSS (kB) of a bare interpreter (`python -c` reading its own status)."""
    out = subprocess.run(
        [sys.executable, "-c", _OWN_PEAK], capture_output=True, text=True, check=True
    )
    return int(out.stdout)


def bare_paho(port: int) -> int:
    """RSS (kB) of an idle, connected paho client with its network thread."""
    proc = subprocess.Popen(
        [sys.executable, "-c", PAHO_IDLE, str(port)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError("bare paho client did not connect")
        time.sleep(IDLE_SETTLE_S)
        return _status_kb(proc.pid, "VmRSS")
    finally:
        proc.kill()
        proc.wait()


def import_costs() -> list[tuple[str, int | None]]:
    """(module, kB its import adds to a bare interpreter), None when it is not installed."""
    out: list[tuple[str, int | None]] = []
    for name in MODULES:
        done = subprocess.run(
            [sys.executable, "-c", RSS_OF_IMPORT, name], capture_output=True, text=True, check=False
        )
        out.append((name, int(done.stdout.split()[0]) if done.returncode == 0 else None))
    return out


class _Agent:
    """`python -m agent run`, its stdout lines collected."""

    def __init__(self, config: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "agent", "run", "--config", str(config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.out: list[str] = []
        self.err: list[str] = []
        assert self.proc.stdout is not None
        assert self.proc.stderr is not None
        for stream, into in ((self.proc.stdout, self.out), (self.proc.stderr, self.err)):
            threading.Thread(target=self._pump, args=(stream, into), daemon=True).start()

    @staticmethod
    def _pump(stream: object, into: list[str]) -> None:
        for line in stream:  # type: ignore[attr-defined]
            into.append(line)

    def wait(self, lines: list[str], text: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in ln for ln in lines):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"agent: no {text!r}; stderr: {''.join(self.err)[-2000:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def agent_idle(port: int) -> dict[str, int]:
    """The agent's RSS (kB): idle after a cn20 scan, after a GS1 scan, and its peak."""
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        root = Path(tmp)
        with VirtualSerialScanner(root / "ttyScanner") as scanner:
            config = root / "agent.toml"
            config.write_text(CONFIG.format(root=root, port=scanner.port, mqtt_port=port))
            agent = _Agent(config)
            try:
                agent.wait(agent.err, "uplink: connected")
                agent.wait(agent.err, "scanner counter: reading")
                scanner.scan(unit_codes(1)[0])
                agent.wait(agent.out, "✔")
                time.sleep(IDLE_SETTLE_S)
                figures = {"cn20": _status_kb(agent.proc.pid, "VmRSS")}
                scanner.scan(GS1_SCAN)
                agent.wait(agent.out, "gs1/")
                time.sleep(IDLE_SETTLE_S)
                figures["gs1"] = _status_kb(agent.proc.pid, "VmRSS")
                figures["peak"] = _status_kb(agent.proc.pid, "VmHWM")
            finally:
                agent.stop()
    return figures


def main() -> int:
    """Print the figures and the ratios."""
    python = bare_python()
    with LocalBroker() as broker:
        paho = bare_paho(broker.port)
        ours = agent_idle(broker.port)
    print(f"  bare `python -c` (peak, VmHWM)          : {_mb(python)}")
    print(f"  bare paho client, connected, idle        : {_mb(paho)}")
    verdict = "met" if ours["cn20"] / 1024 <= IDLE_TARGET_MB else "MISSED"
    print(
        f"  agent idle, 1 serial scanner, after cn20 : {_mb(ours['cn20'])} "
        f"(×{ours['cn20'] / python:.2f} python, ×{ours['cn20'] / paho:.2f} paho; "
        f"target <= {IDLE_TARGET_MB:.0f} MB: {verdict})"
    )
    print(
        f"  agent after a GS1 scan (biip on demand)  : {_mb(ours['gs1'])} "
        f"(+{_mb(ours['gs1'] - ours['cn20'])}); peak {_mb(ours['peak'])}"
    )
    print("  RSS each import adds to a bare interpreter (alone; shared dependencies in each):")
    for name, kb in import_costs():
        print(f"    {name:<52} {'not installed' if kb is None else '+' + _mb(kb)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
