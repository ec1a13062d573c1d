"""`make demo`: a broker, the agent, a virtual scanner and a subscriber, in one command.

Three scenes, each visible in the output and each verified before the demo says OK:

1. **Pharmacy dispensing.** Unit trace codes become signed, hash-chained events; the commodity
   barcode and a partial read are refused with the reason the worker sees; a case code (大码)
   at dispensing stops the line until the worker scans `TSC:ACK`.
2. **Warehouse receiving.** `TSC:OP:receive` and `TSC:DOC:PO-1001` open a purchase receipt
   whose supplier manifest (a `[masterdata] manifests` file) lists four packs; three arrive,
   one pack that is not on the manifest is refused, and `TSC:END` publishes the
   reconciliation report (matched / missing / unexpected) on `.../report`.
3. **Network outage.** The broker is stopped mid-shift: scans are still confirmed (they are
   durable in the encrypted buffer), `status` over the local API shows them waiting; the
   broker comes back and the backlog is delivered.
4. **The central ledger.** A `tracescan-central run` consumer (with its own PostgreSQL) has
   verified and stored every event all along; the broker is killed with `kill -9` and comes
   back from its persistence, scanning goes on; what the restart lost the ledger asks for and
   the device sends again, and the ledger's report shows every event stored once and confirmed
   back to the device (skipped, with the reason, where PostgreSQL is not installed).

Finishes by itself within a minute; exit status 0 only if everything shown was verified
(`TRACESCAN_DEMO_FOREVER=1` keeps scanning units until Ctrl-C after the scenes).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.ops.localapi import ApiClient, ApiError
from agent.ops.status import render
from agent.records.verify import public_key_from_b64, verify_chain, verify_signature
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
keepalive = 5
backoff_initial = 0.2
backoff_max = 1.0

[catalog]
path = "{catalog}"

[masterdata]
manifests = ["{manifest}"]
"""

#: With a ledger, the agent pins its key: events wait for its signed ack, acks and resend
#: requests are taken only when signed by it.
CENTRAL_SECTION = """
[central]
public_key = "{key}"
ack_timeout = 2
"""

LEDGER_CONFIG = """\
[central]
key_dir = "{keys}"
topic_prefix = "tracescan/v1"
resend_after = 1.0

[mqtt]
host = "127.0.0.1"
port = {mqtt_port}
keepalive = 5
backoff_max = 1.0

[database]
dsn = "{dsn}"
"""
#: central.conf's queueing and latency settings, and an autosave short enough that the
#: ledger's session is on disk before scene 4 kills the broker.
LEDGER_BROKER = "set_tcp_nodelay true\nmax_queued_messages 1000000000\nautosave_interval 2"

DOC = "PO-1001"
GAP = 0.6  # seconds between scans: readable, and beyond the double-read window per code

#: One scan of a scene: the code, what the viewer is told it is, and what the agent must make
#: of it: "accepted", the refusal's reason, or "command" (a command barcode applied).
#: tests/test_demo.py plays every scene through the agent and holds it to `expect`.
Step = tuple[str, str, str]


def _show(msg: Received) -> None:
    obj = json.loads(msg.payload)
    kind = msg.topic.rsplit("/", 1)[-1]
    if kind == "event":
        print(
            f"  broker ← event  seq={obj['seq']:<3} {obj['op']:<8} {obj['kind']}/{obj['level']} "
            f"code={obj['code']}",
            flush=True,
        )
    elif kind == "reject":
        print(f"  broker ← reject {obj['reason']}: {obj['code']!r}", flush=True)
    elif kind == "report":
        c = obj["counts"]
        print(
            f"  broker ← report {obj['doc']} from {obj['supplier']}: expected {c['expected']}, "
            f"matched {c['matched']}, missing {c['missing']}, unexpected {c['unexpected']}",
            flush=True,
        )
    elif kind == "status":
        print(f"  broker ← status {msg.payload.decode()}", flush=True)


def pharmacy() -> list[Step]:
    """Scene 1: what the counter scans, with what a viewer should expect."""
    units = unit_codes(8)
    return [
        (units[0], "a unit pack's trace code", "accepted"),
        (units[1], "another unit", "accepted"),
        (
            "6901234567892",
            "the commodity barcode (69…) instead of the trace code",
            "commodity_barcode",
        ),
        (units[2], "a unit", "accepted"),
        (
            trace_code(DEMO_CASE_PREFIX, 1),
            "a case code (大码) at dispensing: the line stops",
            "level_not_allowed",
        ),
        (units[3], "a unit while the line is stopped: refused until acknowledged", "awaiting_ack"),
        ("TSC:ACK", "the worker acknowledges (command barcode)", "command"),
        ("812345600000", "a partial read", "unknown_format"),
        (units[4], "a unit", "accepted"),
        (units[5], "a unit", "accepted"),
    ]


def manifest() -> tuple[dict[str, Any], list[str], str]:
    """Scene 2's supplier manifest, the packs that arrive, and one pack not on the manifest."""
    listed = unit_codes(4, start=500)
    doc = {"version": 1, "doc": DOC, "supplier": "Demo Pharma Wholesale", "codes": listed}
    return doc, listed[:3], unit_codes(1, start=900)[0]


def receiving(arrived: list[str], stray: str) -> list[Step]:
    """Scene 2: the dock scans."""
    return [
        ("TSC:OP:receive", "command barcode: operation = receiving", "command"),
        (f"TSC:DOC:{DOC}", f"command barcode: open purchase receipt {DOC}", "command"),
        *((c, "a pack listed on the supplier's manifest", "accepted") for c in arrived),
        (stray, "a pack the supplier did not list: refused (not_in_manifest)", "not_in_manifest"),
        ("TSC:END", "command barcode: close the receipt → reconciliation report", "command"),
        ("TSC:OP:dispense", "command barcode: back to dispensing", "command"),
    ]


def outage() -> list[Step]:
    """Scene 3: the counter keeps scanning while the broker is away."""
    return [(c, "a unit during the outage", "accepted") for c in unit_codes(3, start=300)]


def more_units(n: int) -> list[Step]:
    """Round `n` of `TRACESCAN_DEMO_FOREVER`: more units."""
    return [(c, "a unit", "accepted") for c in unit_codes(5, start=1000 * n)]


class Demo:
    """The running pieces and the checks made along the way."""

    def __init__(self, root: Path, broker: LocalBroker, scanner: VirtualSerialScanner) -> None:
        self.root = root
        self.broker = broker
        self.scanner = scanner
        self.sock = root / "data" / "api.sock"
        self.checks: list[tuple[str, bool]] = []
        self.ledger: DemoLedger | None = None
        self.extra_events = 0  # events of scene 4

    def check(self, what: str, ok: bool) -> None:
        """Record (and show) one verification."""
        self.checks.append((what, ok))
        print(f"  {'✓' if ok else '✗'} {what}", flush=True)

    def play(self, plan: list[Step]) -> None:
        """Scan each code with a caption."""
        for code, what, _ in plan:
            print(f"\n  scanner → {what}: {code}", flush=True)
            self.scanner.scan(code)
            time.sleep(GAP)

    def status(self) -> dict[str, Any]:
        """`status` from the running agent over the local API."""
        with ApiClient(self.sock) as client:
            return client.call("status")

    def wait_status(self, predicate: Callable[[dict[str, Any]], bool], timeout: float) -> bool:
        """Poll the agent's status until `predicate` holds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if predicate(self.status()):
                    return True
            except ApiError:
                pass
            time.sleep(0.2)
        return False


class DemoLedger:
    """`tracescan-central run` with a PostgreSQL of its own (hardware_sim/postgres.py)."""

    def __init__(self, root: Path, broker_port: int) -> None:
        from hardware_sim.postgres import LocalPostgres  # noqa: PLC0415 - optional part

        self.pg = LocalPostgres(durable=True).start()
        self.config = root / "central.toml"
        self.config.write_text(
            LEDGER_CONFIG.format(
                keys=root / "central-keys", mqtt_port=broker_port, dsn=self.pg.dsn("postgres")
            )
        )
        self.proc: subprocess.Popen[str] | None = None
        self.connections = 0  # "connected" lines the consumer logged

    @staticmethod
    def available() -> bool:
        """PostgreSQL and psycopg are installed (make demo installs both)."""
        import importlib.util  # noqa: PLC0415

        from hardware_sim.postgres import postgres_bindir  # noqa: PLC0415

        try:
            postgres_bindir()
        except FileNotFoundError:
            return False
        return importlib.util.find_spec("psycopg") is not None

    def cli(self, *args: str) -> str:
        """Run `tracescan-central ARGS --config …`; its stdout."""
        return subprocess.run(
            [sys.executable, "-m", "central", *args, "--config", str(self.config)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    def start(self, site: str, device: str, pubkey: str) -> None:
        """Enroll the device and start one consumer."""
        self.cli("enroll", "--site", site, "--device", device, "--pubkey", pubkey)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "central", "run", "--config", str(self.config)],
            stderr=subprocess.PIPE,
            text=True,
        )
        threading.Thread(target=self._echo, args=(self.proc,), daemon=True).start()

    def _echo(self, proc: subprocess.Popen[str]) -> None:
        """Show the consumer's log lines; count its connections to the broker."""
        assert proc.stderr is not None
        for line in proc.stderr:
            sys.stderr.write(line)
            if "ledger: connected as" in line:
                self.connections += 1

    def wait_connected(self, count: int, timeout: float) -> bool:
        """Until the consumer has connected (and subscribed) `count` times."""
        deadline = time.monotonic() + timeout
        while self.connections < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.connections >= count

    def figures(self) -> dict[str, Any]:
        """`report --json` of the one device."""
        devices = json.loads(self.cli("report", "--json"))["devices"]
        return devices[0] if devices else {}

    def close(self) -> int | None:
        """SIGTERM the consumer, stop PostgreSQL; the consumer's exit status."""
        rc = None
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.pg.close()
        return rc


def _wait_socket(path: Path, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return True
        time.sleep(0.05)
    return False


def main() -> int:
    """Run the demo; exit status 0 only when every scene was verified."""
    forever = os.environ.get("TRACESCAN_DEMO_FOREVER") == "1"
    with tempfile.TemporaryDirectory(prefix="tracescan-demo-") as tmp:
        root = Path(tmp)
        (root / "catalog.csv").write_text(DEMO_CATALOG_CSV, encoding="utf-8")
        doc, arrived, stray = manifest()
        (root / "manifest.json").write_text(json.dumps(doc), encoding="utf-8")
        (root / "broker").mkdir()
        broker = LocalBroker(workdir=root / "broker", persistence=True, extra=LEDGER_BROKER)
        broker.start()
        try:
            with VirtualSerialScanner(root / "ttyScanner") as scanner:
                demo = Demo(root, broker, scanner)
                if DemoLedger.available():
                    demo.ledger = DemoLedger(root, broker.port)
                try:
                    return _run(demo, forever, arrived, stray)
                finally:
                    if demo.ledger is not None:
                        demo.check("ledger consumer exited 0 on SIGTERM", demo.ledger.close() == 0)
        finally:
            broker.close()


def _run(demo: Demo, forever: bool, arrived: list[str], stray: str) -> int:
    root, broker, scanner = demo.root, demo.broker, demo.scanner
    cfg = root / "tracescan.toml"
    cfg.write_text(
        CONFIG.format(
            data=root / "data",
            keys=root / "keys",
            port=scanner.port,
            mqtt_port=broker.port,
            catalog=root / "catalog.csv",
            manifest=root / "manifest.json",
        )
    )
    print(f"▶ mosquitto on 127.0.0.1:{broker.port}; virtual scanner at {scanner.slave_path}")
    pubkey = subprocess.run(
        [sys.executable, "-m", "agent", "pubkey", "--config", str(cfg)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    print(f"▶ device public key (Ed25519): {pubkey}")
    if demo.ledger is not None:
        demo.ledger.start("demo-pharmacy", "counter-01", pubkey)
        central_key = demo.ledger.cli("pubkey").strip()
        print(f"▶ central ledger running (PostgreSQL on 127.0.0.1:{demo.ledger.pg.port});")
        print(f"  device enrolled; central public key: {central_key} (pinned by the agent)")
        with cfg.open("a", encoding="utf-8") as f:
            f.write(CENTRAL_SECTION.format(key=central_key))
    recorder = Recorder("127.0.0.1", broker.port, "tracescan/v1/#", on_message=_show)
    agent = subprocess.Popen([sys.executable, "-m", "agent", "run", "--config", str(cfg)])
    rc: int | None = None
    try:
        demo.check("agent up, local API listening", _wait_socket(demo.sock, 15))

        print("\n══ scene 1: pharmacy dispensing (the agent prints ✔/✘ as the worker sees it) ══")
        demo.play(pharmacy())
        demo.check(
            "5 units recorded; the case code stopped the line until TSC:ACK",
            recorder.wait_for(lambda r: len(r.on("event")) >= 5, timeout=10)
            and _reasons(recorder)
            >= {"commodity_barcode", "level_not_allowed", "awaiting_ack", "unknown_format"},
        )

        print(f"\n══ scene 2: warehouse receiving against the supplier's manifest ({DOC}) ══")
        demo.play(receiving(arrived, stray))
        got = recorder.wait_for(lambda r: bool(r.on("report")), timeout=10)
        report = json.loads(recorder.on("report")[0].payload) if got else {}
        demo.check(
            "reconciliation report: 3 matched, 1 missing, 1 unexpected",
            got
            and report["counts"] == {"expected": 4, "matched": 3, "missing": 1, "unexpected": 1}
            and report["unexpected"] == [stray]
            and "not_in_manifest" in _reasons(recorder),
        )

        print("\n══ scene 3: network outage — the broker goes away mid-shift ══")
        before = len(recorder.on("event"))
        broker.stop()
        demo.check(
            "the agent notices the link is down",
            demo.wait_status(lambda s: s["online"] is False, timeout=10),
        )
        demo.play(outage())
        waiting = demo.wait_status(lambda s: s["unsent"] >= 3, timeout=10)
        status = demo.status() if waiting else {}
        if status:
            print(render(status, "the running agent, over the local API"))
        demo.check(
            "scans confirmed and buffered while offline", waiting and status["online"] is False
        )
        print("\n  ▶ the broker is back", flush=True)
        broker.start()
        demo.check(
            "the backlog is delivered once the broker is back",
            recorder.wait_for(lambda r: len(r.on("event")) >= before + 3, timeout=20)
            and demo.wait_status(lambda s: s["unsent"] == 0 and s["online"], timeout=20),
        )
        print(render(demo.status(), "the running agent, over the local API"))

        if demo.ledger is not None:
            _ledger_scene(demo, recorder)
        else:
            print("\n══ scene 4 skipped: PostgreSQL or psycopg is not installed ══")

        n = 0
        while forever:
            n += 1
            demo.play(more_units(n))
    finally:
        agent.send_signal(signal.SIGTERM)
        try:
            rc = agent.wait(10)
        except subprocess.TimeoutExpired:
            agent.kill()
            agent.wait()
        time.sleep(0.3)
        recorder.close()
    return _summary(demo, recorder, pubkey, rc)


def _ledger_scene(demo: Demo, recorder: Recorder) -> None:
    """Scene 4: a broker kill -9 with the ledger running; then what the ledger holds."""
    ledger = demo.ledger
    assert ledger is not None
    print("\n══ scene 4: the central ledger — and the broker killed with kill -9 ══")
    demo.play([(c, "a unit", "accepted") for c in unit_codes(2, start=400)])
    time.sleep(1.0)
    broker = demo.broker
    assert broker.proc is not None
    print("\n  ▶ kill -9 of the broker", flush=True)
    broker.proc.kill()
    broker.proc.wait()
    broker.proc = None
    time.sleep(1.0)
    print("  ▶ the broker restarts from its persistence", flush=True)
    seen = ledger.connections
    broker.start()
    demo.check("the ledger consumer is back", ledger.wait_connected(seen + 1, timeout=15))
    demo.play([(c, "a unit after the restart", "accepted") for c in unit_codes(2, start=500)])
    demo.extra_events = 4
    total = 11 + demo.extra_events
    deadline = time.monotonic() + 30
    figures = ledger.figures()
    while figures.get("through", 0) < total and time.monotonic() < deadline:
        time.sleep(0.3)
        figures = ledger.figures()
    central_key = public_key_from_b64(ledger.cli("pubkey").strip())
    asked = {
        s
        for m in recorder.on("resend")
        if verify_signature(ask := json.loads(m.payload), central_key)
        for a, b in ask["ranges"]
        for s in range(a, b + 1)
    }
    print("\n" + ledger.cli("report"))
    if asked:
        print(
            "  mosquitto 2.0.11 does not keep shared subscriptions across a restart: what the"
            " agent sent before the ledger had subscribed again reached no one. The ledger saw"
            f" the hole and asked for seq {_spans(sorted(asked))}, signed (cmd/resend); the"
            " device, which keeps every event until the ledger's signed ack, sent it again.",
            flush=True,
        )
    confirmed = demo.wait_status(lambda s: s["confirmed_through"] == total, timeout=15)
    print(render(demo.status(), "the running agent, over the local API"))
    demo.check(
        "the ledger holds every event once, verified, gapless; the device saw its signed ack",
        figures.get("through") == total
        and figures.get("head") == total
        and figures.get("conflicts") == 0
        and not figures.get("open_gaps")
        and not figures.get("kept_apart")
        and confirmed,
    )


def _spans(seqs: list[int]) -> str:
    spans: list[list[int]] = []
    for s in seqs:
        if spans and spans[-1][1] == s - 1:
            spans[-1][1] = s
        else:
            spans.append([s, s])
    return ", ".join(f"{a}..{b}" if a != b else str(a) for a, b in spans)


def _reasons(recorder: Recorder) -> set[str]:
    return {json.loads(m.payload)["reason"] for m in recorder.on("reject")}


def _summary(demo: Demo, recorder: Recorder, pubkey: str, rc: int | None) -> int:
    events = sorted({json.loads(m.payload)["seq"]: m.payload for m in recorder.on("event")}.items())
    report = verify_chain([p for _, p in events], public_key_from_b64(pubkey))
    rejects = [json.loads(m.payload)["reason"] for m in recorder.on("reject")]
    print("\n══ summary ══")
    print(f"  events delivered : {len(events)} (seq {report.first_seq}…{report.last_seq})")
    print(f"  refused scans    : {len(rejects)} ({', '.join(rejects)})")
    print(
        "  signatures+chain : "
        + ("verified with the public key alone" if report.ok else str(report.problems))
    )
    print(f"  agent exit       : {rc} after SIGTERM")
    demo.check(
        "every event signed and chained, none missing",
        report.ok and len(events) == 11 + demo.extra_events,
    )
    demo.check("agent exited 0 on SIGTERM", rc == 0)
    ok = all(passed for _, passed in demo.checks)
    print("  result           : " + ("OK" if ok else "FAILED"))
    return 0 if ok else 1
