"""The uplink's backlog drain vs bare paho, in the same run, against the same local mosquitto.

1. Bare: paho-mqtt QoS 1 publish of the same payloads (MQTT 5, threaded loop, the application
   holding at most 20 unacknowledged, paho's in-flight limit 20), first publish to last PUBACK.
2. Ours: the real daemon (`python -m agent run`, a subprocess) draining a 100k-event backlog
   from the encrypted store: decrypt, publish, PUBACK, mark sent. From its retained "online"
   status (the drain begins) until the store holds no unsent row. Target: ours/bare >= 0.7.
   While it drains, live scans are typed on a virtual serial scanner: how long each waited
   from commit to being marked sent, and how much of the older backlog it overtook.
3. With a central ledger (`[central] public_key` pinned): the same 100k drain, which now ends
   when every row is marked *published* (PUBACKed, waiting for central's ack), against the same
   bare baseline; then one signed `cmd/ack` covering all of them (retained, as the ledger
   sends it): how long until the daemon has verified it and marked all 100k done.
4. A 1M-event backlog drained by the daemon: time, and the daemon's peak RSS (VmHWM) against
   the 80 MB target.

`BENCH_UPLINK_BIG=0` skips the 1M run (building it signs a million events: ~2 minutes);
`BENCH_UPLINK_CENTRAL=0` skips run 3.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import paho.mqtt.publish as publish
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion

from agent.records.envelope import rfc3339
from agent.records.signing import sign_reject
from agent.store import OutboxReader, Sealer, acks, keys, unpublished, unsent_depth
from hardware_sim.backlog import build_backlog
from hardware_sim.broker import LocalBroker
from hardware_sim.serial_scanner import VirtualSerialScanner
from hardware_sim.workload import unit_codes

N = int(os.environ.get("BENCH_UPLINK_N", "100000"))
BIG = 1_000_000
INFLIGHT = 20
LIVE_SCANS = 10
BUILD_BATCH = 1000
RSS_TARGET_MB = 80

CONFIG = """\
[device]
id = "{device}"
site = "bench"
data_dir = "{root}/data"
key_dir = "{root}/keys"
lang = "en"
{scanner}
[mqtt]
host = "127.0.0.1"
port = {port}
inflight = {inflight}
keepalive = 30
backoff_initial = 0.05
backoff_max = 0.5

[store]
max_bytes = 4294967296
"""


def _write_config(root: Path, device: str, port: int, scanner: str = "", central: str = "") -> Path:
    section = (
        f'\n[[scanner]]\ntype = "serial"\nname = "live"\nport = "{scanner}"\n' if scanner else ""
    )
    path = root / "agent.toml"
    text = CONFIG.format(device=device, root=root, port=port, inflight=INFLIGHT, scanner=section)
    if central:  # no re-publication during the run: the ack comes once the drain is over
        text += f'\n[central]\npublic_key = "{central}"\nack_timeout = 86400\n'
    path.write_text(text)
    return path


def read_payloads(root: Path) -> list[tuple[str, bytes]]:
    """The backlog's (topic, plaintext) pairs, exactly what the uplink will publish."""
    ring = keys.load(root / "keys", create=False)
    reader = OutboxReader(root / "data", Sealer(ring.data))
    out: list[tuple[str, bytes]] = []
    after = 0
    try:
        while batch := reader.unsent(after, 5000):
            out.extend((f"tracescan/v1/bench/bare/{r.topic}", r.payload) for r in batch)
            after = batch[-1].rid
    finally:
        reader.close()
    return out


def bare_paho(port: int, payloads: list[tuple[str, bytes]]) -> float:
    """Seconds for bare paho to get every payload acknowledged, at most INFLIGHT outstanding."""
    window = threading.BoundedSemaphore(INFLIGHT)
    done = threading.Event()
    acked = 0
    total = len(payloads)

    def on_publish(c: mqtt.Client, u: object, mid: int, rc: object, p: object) -> None:
        nonlocal acked
        acked += 1
        window.release()
        if acked == total:
            done.set()

    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"bare-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv5
    )
    client.max_inflight_messages_set(INFLIGHT)
    client.on_publish = on_publish
    client.connect("127.0.0.1", port, keepalive=30)
    client.loop_start()
    began = time.perf_counter()
    for topic, payload in payloads:
        window.acquire()
        client.publish(topic, payload, qos=1)
    done.wait(600)
    elapsed = time.perf_counter() - began
    client.disconnect()
    client.loop_stop()
    return elapsed


@dataclass(frozen=True, slots=True)
class Drain:
    """One daemon drain."""

    seconds: float
    events: int
    hwm_kb: int
    live_waits: list[float]  # commit -> marked sent, seconds, per live scan
    live_overtook: list[int]  # older backlog rows still unsent when the live row was sent


def _unsent(db: sqlite3.Connection) -> int:
    return unsent_depth(db, acks.load(db)).unsent


def _live_rows(db: sqlite3.Connection, backlog: int) -> int:
    return int(db.execute("SELECT COUNT(*) FROM outbox WHERE seq > ?", (backlog,)).fetchone()[0])


def _hwm_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


class _Online(threading.Event):
    """Set when the daemon's retained online status arrives; `at` is when (wall clock)."""

    at = 0.0


def _status_watch(port: int, device: str) -> tuple[mqtt.Client, _Online]:
    online = _Online()

    def on_message(c: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
        if json.loads(msg.payload).get("online") and not online.is_set():
            online.at = time.time()
            online.set()

    sub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    sub.on_connect = lambda c, u, f, rc, p: c.subscribe(f"tracescan/v1/bench/{device}/status", 1)
    sub.on_message = on_message
    sub.connect("127.0.0.1", port, keepalive=30)
    sub.loop_start()
    return sub, online


@dataclass(frozen=True, slots=True)
class Confirm:
    """A drain with a central ledger: until all are published, then one ack to all done."""

    published_seconds: float
    ack_seconds: float  # the ack published -> every row marked done


@contextlib.contextmanager
def _daemon(
    root: Path, config: Path, port: int, device: str
) -> Iterator[tuple[subprocess.Popen[bytes], _Online]]:
    """`python -m agent run` (log in root/daemon.log) once its retained "online" status has
    arrived (`_Online.at`: when the drain begins); SIGTERM on the way out."""
    sub, online = _status_watch(port, device)
    log = (root / "daemon.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent", "run", "--config", str(config)], stdout=log, stderr=log
    )
    log.close()
    try:
        if not online.wait(120):
            raise RuntimeError(f"daemon never connected; see {root / 'daemon.log'}")
        yield proc, online
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        sub.disconnect()
        sub.loop_stop()


def drain(
    root: Path, config: Path, port: int, device: str, scanner: VirtualSerialScanner | None
) -> Drain:
    """Run the daemon until the store has nothing unsent; scan live codes meanwhile."""
    db = sqlite3.connect(root / "data" / "tracescan.db")
    total = _unsent(db)
    backlog_end = int(db.execute("SELECT COALESCE(MAX(rid), 0) FROM outbox").fetchone()[0])
    with _daemon(root, config, port, device) as (proc, online):
        began = time.perf_counter()
        live = unit_codes(LIVE_SCANS, start=BIG + 10) if scanner is not None else []
        next_live = began + 0.3
        poll = 0.02 if total <= N else 0.25
        want_live = LIVE_SCANS if scanner is not None else 0
        while _unsent(db) > 0 or live or _live_rows(db, total) < want_live:
            if scanner is not None and live and time.perf_counter() >= next_live:
                scanner.scan(live.pop(0))
                next_live += 0.3
            time.sleep(poll)
        hwm = _hwm_kb(proc.pid)
    # The backlog is drained when its last row is marked sent (the daemon's own timestamp).
    done = acks.load(db)
    last_sent = max(run.at for run in done if run.lo <= backlog_end)
    seconds = last_sent - online.at
    waits: list[float] = []
    overtook: list[int] = []
    rows = db.execute(
        "SELECT rid, created FROM outbox WHERE topic = 'event' AND seq > ? ORDER BY rid",
        (total,),
    ).fetchall()
    for rid, created in rows:
        run = done.find(rid)
        assert run is not None
        waits.append(run.at - created)
        overtook.append(
            sum(min(r.hi, rid - 1) - r.lo + 1 for r in done if r.at > run.at and r.lo < rid)
        )
    db.close()
    return Drain(seconds, total, hwm, waits, overtook)


def drain_central(
    root: Path, config: Path, port: int, device: str, key: Ed25519PrivateKey
) -> Confirm:
    """Run the daemon (central key pinned) until every row is published, then ack them all."""
    db = sqlite3.connect(root / "data" / "tracescan.db")
    head = int(db.execute("SELECT COALESCE(MAX(seq), 0) FROM outbox").fetchone()[0])
    with _daemon(root, config, port, device) as (_, online):
        while unpublished(db) > 0:
            time.sleep(0.02)
        last_published = max(run.at for run in acks.load(db, acks.PUBLISHED))
        body = {"v": 1, "site": "bench", "device": device, "through": head, "ts": rfc3339(0)}
        ack = sign_reject(body, key)
        began = time.time()
        publish.single(f"tracescan/v1/bench/{device}/cmd/ack", ack, qos=1, retain=True, port=port)
        while _unsent(db) > 0:
            time.sleep(0.005)
        confirmed = max(run.at for run in acks.load(db))
    db.close()
    return Confirm(last_published - online.at, confirmed - began)


def main() -> int:
    """Run the comparisons and print them."""
    with tempfile.TemporaryDirectory(
        prefix="bench-uplink-", dir=os.environ.get("BENCH_DIR")
    ) as tmp:
        base = Path(tmp)
        with LocalBroker(workdir=base, extra="max_queued_messages 0") as broker:
            root = base / "100k"
            root.mkdir()
            with VirtualSerialScanner(root / "ttyLive") as scanner:
                config = _write_config(root, "drain", broker.port, scanner.port)
                built = build_backlog(config, N)
                print(f"backlog: {N:,} signed events stored in {built:.1f} s")
                payloads = read_payloads(root)
                size = statistics.mean(len(p) for _, p in payloads)
                bare = bare_paho(broker.port, payloads)
                del payloads
                ours = drain(root, config, broker.port, "drain", scanner)
            bare_rate, our_rate = N / bare, ours.events / ours.seconds
            print(f"QoS 1, {N:,} events of {size:.0f} B, in-flight {INFLIGHT}, local mosquitto")
            print(f"  bare paho publish->PUBACK      : {bare:6.2f} s  {bare_rate:9,.0f} msg/s")
            print(
                f"  tracescan drain (store->PUBACK->marked sent): {ours.seconds:6.2f} s  {our_rate:9,.0f} msg/s"
            )
            print(f"  ratio                          : {our_rate / bare_rate:.2f}  (target >= 0.7)")
            print(f"  daemon peak RSS (VmHWM)        : {ours.hwm_kb / 1024:.1f} MB")
            if ours.live_waits:
                print(
                    f"  {len(ours.live_waits)} live scans during the drain, commit -> marked sent:"
                    f" median {statistics.median(ours.live_waits) * 1000:.0f} ms,"
                    f" max {max(ours.live_waits) * 1000:.0f} ms;"
                    f" each overtook {min(ours.live_overtook):,}..{max(ours.live_overtook):,}"
                    " older backlog rows"
                )
            if os.environ.get("BENCH_UPLINK_CENTRAL", "1") != "0":
                root = base / "central"
                root.mkdir()
                key = Ed25519PrivateKey.generate()
                pinned = base64.b64encode(key.public_key().public_bytes_raw()).decode()
                config = _write_config(root, "pinned", broker.port, central=pinned)
                build_backlog(config, N)
                central = drain_central(root, config, broker.port, "pinned", key)
                rate = N / central.published_seconds
                print(
                    f"  with a central key: drain to published {central.published_seconds:6.2f} s"
                    f"  {rate:9,.0f} msg/s, ratio {rate / bare_rate:.2f} (target >= 0.7);"
                    f" one signed ack -> {N:,} rows done: {central.ack_seconds * 1000:.0f} ms"
                )
            if os.environ.get("BENCH_UPLINK_BIG", "1") != "0":
                root = base / "1m"
                root.mkdir()
                config = _write_config(root, "big", broker.port)
                built = build_backlog(config, BIG)
                print(f"backlog: {BIG:,} signed events stored in {built:.1f} s")
                big = drain(root, config, broker.port, "big", None)
                mb = big.hwm_kb / 1024
                verdict = "met" if mb <= RSS_TARGET_MB else "MISSED"
                print(
                    f"  1M drain: {big.seconds:.1f} s ({big.events / big.seconds:,.0f} msg/s),"
                    f" daemon peak RSS {mb:.1f} MB (target <= {RSS_TARGET_MB} MB: {verdict})"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
