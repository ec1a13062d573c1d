"""`make demo`: a broker, the agent, a virtual scanner and a subscriber, in one command.

A newcomer sees a pharmacy counter at work: trace codes become signed, hash-chained events on
the broker; a commodity barcode, a case code at dispensing and a misread are refused with the
reason the worker would see. Finishes by itself with a summary (`TRACESCAN_DEMO_FOREVER=1`
keeps scanning until Ctrl-C).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from agent.verify import public_key_from_b64, verify_chain
from hardware_sim.broker import LocalBroker
from hardware_sim.serial_scanner import VirtualSerialScanner
from hardware_sim.subscriber import Received, Recorder
from hardware_sim.workload import DEMO_CASE_PREFIX, DEMO_CATALOG_CSV, trace_code, unit_codes

CONFIG = """\
[device]
id = "counter-01"
site = "demo-pharmacy"
data_dir = "{data}"
key_dir = "{keys}"
lang = "en"

[[scanner]]
type = "serial"
name = "counter"
port = "{port}"
baudrate = 9600

[operation]
mode = "dispense"

[mqtt]
host = "127.0.0.1"
port = {mqtt_port}
topic_prefix = "tracescan/v1"

[catalog]
path = "{catalog}"
"""


def _show(msg: Received) -> None:
    obj = json.loads(msg.payload)
    kind = msg.topic.rsplit("/", 1)[-1]
    if kind == "event":
        print(
            f"  broker ← event  seq={obj['seq']:<3} {obj['kind']}/{obj['level']} code={obj['code']}",
            flush=True,
        )
    elif kind == "reject":
        print(f"  broker ← reject {obj['reason']}: {obj['code']!r}", flush=True)
    elif kind == "status":
        print(f"  broker ← status {msg.payload.decode()}", flush=True)


def script() -> list[tuple[str, str]]:
    """What the demo scans, with what a viewer should expect."""
    units = unit_codes(8)
    return [
        (units[0], "a unit pack's trace code"),
        (units[1], "another unit"),
        ("6901234567892", "the commodity barcode (69…) instead of the trace code"),
        (units[2], "a unit"),
        (trace_code(DEMO_CASE_PREFIX, 1), "a case code (大码) at dispensing"),
        ("812345600000", "a partial read"),
        (units[3], "a unit"),
        (units[4], "a unit"),
        (units[5], "a unit"),
    ]


def main() -> int:
    """Run the demo; exit status 0 when every accepted scan arrived with a valid chain."""
    forever = os.environ.get("TRACESCAN_DEMO_FOREVER") == "1"
    with tempfile.TemporaryDirectory(prefix="tracescan-demo-") as tmp:
        root = Path(tmp)
        (root / "catalog.csv").write_text(DEMO_CATALOG_CSV, encoding="utf-8")
        with LocalBroker() as broker, VirtualSerialScanner(root / "ttyScanner") as scanner:
            cfg = root / "tracescan.toml"
            cfg.write_text(
                CONFIG.format(
                    data=root / "data",
                    keys=root / "keys",
                    port=scanner.port,
                    mqtt_port=broker.port,
                    catalog=root / "catalog.csv",
                )
            )
            print(
                f"▶ mosquitto on 127.0.0.1:{broker.port}; virtual scanner at {scanner.slave_path}"
            )
            pubkey = subprocess.run(
                [sys.executable, "-m", "agent", "pubkey", "--config", str(cfg)],
                check=True,
                capture_output=True,
                text=True,
            ).stdout.strip()
            print(f"▶ device public key (Ed25519): {pubkey}")
            recorder = Recorder("127.0.0.1", broker.port, "tracescan/v1/#", on_message=_show)
            agent = subprocess.Popen([sys.executable, "-m", "agent", "run", "--config", str(cfg)])
            try:
                time.sleep(1.0)
                plan = script()
                print(
                    "▶ scanning at the dispensing counter (the agent prints ✔/✘ as the worker sees it)"
                )
                n = 0
                while True:
                    for code, what in plan:
                        print(f"\n  scanner → {what}: {code}", flush=True)
                        scanner.scan(code)
                        time.sleep(0.6)
                    n += 1
                    if not forever:
                        break
                    plan = [(c, "a unit") for c in unit_codes(5, start=100 * n)]
                expected = (
                    sum(1 for _, what in plan if "unit" in what and "partial" not in what)
                    if not forever
                    else 0
                )
                recorder.wait_for(lambda r: len(r.on("event")) >= expected, timeout=15)
            finally:
                agent.send_signal(signal.SIGTERM)
                rc = agent.wait(10)
            time.sleep(0.3)
            recorder.close()
            events = sorted(
                {json.loads(m.payload)["seq"]: m.payload for m in recorder.on("event")}.items()
            )
            report = verify_chain([p for _, p in events], public_key_from_b64(pubkey))
            rejects = [json.loads(m.payload)["reason"] for m in recorder.on("reject")]
            print("\n══ summary ══")
            print(f"  events delivered : {len(events)} (seq {report.first_seq}…{report.last_seq})")
            print(f"  refused scans    : {len(rejects)} ({', '.join(rejects)})")
            print(
                f"  signatures+chain : {'verified with the public key alone' if report.ok else report.problems}"
            )
            print(f"  agent exit       : {rc} after SIGTERM")
            ok = report.ok and rc == 0 and len(events) >= 6 and len(rejects) >= 3
            print("  result           : " + ("OK" if ok else "FAILED"))
            return 0 if ok else 1
