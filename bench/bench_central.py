"""The central ledger's ingest vs its bare parts, in the same run, on the same events.

1. Bare `COPY` of the event rows (the ledger's own columns and primary key) into PostgreSQL.
2. Bare Ed25519 verification (json.loads + `verify_signature`, nothing else) in 1 and in 2
   processes: the physical limit of a verifying consumer on this machine.
3. The ledger's ingest, `tracescan-central run` with 1 and with 2 consumers: the events wait
   queued at the broker (the consumers' sessions exist, they are stopped), then the consumers
   start; from the first to the last event stored. Target: ≥ 0.7× of (2) at the same process
   count. The ratio to (1) says how far the database is from being the limit.
4. Scan-to-central-ack latency at 1,000 scans/s on loopback (10 devices × 100/s, one
   consumer): from publishing an event until a retained `cmd/ack` covering it arrives.
   Target: p99 ≤ 100 ms.
5. Peak RSS (VmHWM) of a consumer process after the runs above.
6. What central.conf's short `autosave_interval` costs: one mosquitto save (SIGUSR1) with
   100,000 events queued for a stopped ledger session — wall time, CPU, file size.

`BENCH_CENTRAL_N` sets the number of events (default 20,000).
"""

from __future__ import annotations

import base64
import json
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from agent.records.envelope import ZERO_HASH, rfc3339
from agent.records.signing import sign_event
from agent.records.verify import public_key_from_b64, verify_signature
from central import ledger
from hardware_sim.broker import LocalBroker
from hardware_sim.postgres import LocalPostgres
from hardware_sim.workload import unit_codes

N = int(os.environ.get("BENCH_CENTRAL_N", "20000"))
DEVICES = 10
RATE = 1000.0  # scans per second, all devices together, for the latency run
LATENCY_SECONDS = 10.0
PREFIX = "tracescan/v1"
SITE = "bench"
#: central.conf's queue and socket settings (the shipped TLS listener is left out here)
QUEUE = "\n".join(
    line
    for line in (Path(__file__).parents[1] / "config/mosquitto/central.conf")
    .read_text()
    .splitlines()
    if line.split(" ")[0]
    in {"max_queued_messages", "max_queued_bytes", "autosave_interval", "set_tcp_nodelay"}
)

CONFIG = """\
[central]
key_dir = "{root}/keys"
topic_prefix = "{prefix}"
group = "{group}"

[mqtt]
host = "127.0.0.1"
port = {port}

[database]
dsn = "{dsn}"
"""


class Fleet:
    """`DEVICES` devices, each signing and chaining its events as the agent does."""

    def __init__(self) -> None:
        self.keys = [Ed25519PrivateKey.generate() for _ in range(DEVICES)]
        self.heads = [ZERO_HASH] * DEVICES
        self.seqs = [0] * DEVICES
        self.codes = iter(unit_codes(1_000_000, seed=11))

    def name(self, i: int) -> str:
        """Device i's id."""
        return f"dev-{i:02d}"

    def event(self, i: int) -> bytes:
        """Device i's next event."""
        self.seqs[i] += 1
        code = next(self.codes)
        body = {
            "v": 1,
            "id": uuid.uuid4().hex,
            "device": self.name(i),
            "site": SITE,
            "seq": self.seqs[i],
            "op": "dispense",
            "code": code,
            "kind": "cn20",
            "level": "unit",
            "fields": {"product_code": code[:7], "serial": code[7:16], "bill_type": "323"},
            "ts": rfc3339(time.time()),
            "doc": None,
            "prev": self.heads[i],
        }
        sealed = sign_event(body, self.keys[i])
        self.heads[i] = sealed.head.hash
        return sealed.payload

    def batch(self, n: int) -> list[tuple[str, bytes]]:
        """n events round-robin over the devices, as (topic, payload)."""
        out = []
        for k in range(n):
            i = k % DEVICES
            out.append((f"{PREFIX}/{SITE}/{self.name(i)}/event", self.event(i)))
        return out

    def pubkeys(self) -> list[str]:
        """What each device's `tracescan pubkey` prints."""
        return [base64.b64encode(k.public_key().public_bytes_raw()).decode() for k in self.keys]


# --- (1) bare COPY -----------------------------------------------------------------------


def bare_copy(dsn: str, events: list[tuple[str, bytes]]) -> float:
    """Rows per second of one COPY of the events' rows into a table like the ledger's."""
    rows = []
    for _, payload in events:
        obj = json.loads(payload)
        rows.append(
            (
                obj["site"],
                obj["device"],
                obj["seq"],
                bytes.fromhex(obj["prev"]),
                bytes(32),
                obj["op"],
                obj["code"],
                obj["level"],
                obj["ts"],
                payload,
            )
        )
    with psycopg.connect(dsn) as conn:
        conn.execute(
            "CREATE TABLE bare (site text, device text, seq bigint, prev bytea, hash bytea,"
            " op text, code text, level text, ts timestamptz, payload bytea,"
            " PRIMARY KEY (site, device, seq))"
        )
        conn.commit()
        t0 = time.perf_counter()
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY bare (site, device, seq, prev, hash, op, code, level, ts, payload) FROM STDIN"
            ) as copy,
        ):
            for row in rows:
                copy.write_row(row)
        conn.commit()
        return len(rows) / (time.perf_counter() - t0)


# --- (2) bare verification ---------------------------------------------------------------


def _verify_part(args: tuple[list[bytes], list[str]]) -> int:
    payloads, pubkeys = args
    keys = {f"dev-{i:02d}": public_key_from_b64(k) for i, k in enumerate(pubkeys)}
    ok = 0
    for p in payloads:
        obj = json.loads(p)
        ok += verify_signature(obj, keys[obj["device"]])
    return ok


def bare_verify(events: list[tuple[str, bytes]], pubkeys: list[str], procs: int) -> float:
    """Events per second verified by `procs` processes (pool start-up not timed)."""
    payloads = [p for _, p in events]
    parts = [(payloads[i::procs], pubkeys) for i in range(procs)]
    with multiprocessing.get_context("fork").Pool(procs) as pool:
        pool.map(_verify_part, [(payloads[:10], pubkeys)] * procs)  # warm
        t0 = time.perf_counter()
        verified = sum(pool.map(_verify_part, parts))
        elapsed = time.perf_counter() - t0
    assert verified == len(payloads), "a signature did not verify"
    return len(payloads) / elapsed


# --- (3) ledger ingest -------------------------------------------------------------------


def _consumers(config: Path, n: int) -> list[subprocess.Popen[bytes]]:
    return [
        subprocess.Popen(
            [sys.executable, "-m", "central", "run", "--config", str(config)],
            stderr=subprocess.DEVNULL,
        )
        for _ in range(n)
    ]


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        p.wait(10)


def _wait_stored(dsn: str, n: int) -> float:
    """Wait until `n` events are stored; events per second from the first to the last batch.

    Timed from the database's own batch timestamps (`stored_at` is each batch transaction's
    start), so the polling here stays rare and costs the machine nothing measurable.
    """
    with psycopg.connect(dsn, autocommit=True) as conn:
        while True:
            row = conn.execute("SELECT count(*) FROM events").fetchone()
            if row and row[0] >= n:
                break
            time.sleep(0.25)
        span = conn.execute(
            "SELECT min(stored_at), max(stored_at),"
            " (SELECT count(*) FROM events WHERE stored_at = (SELECT min(stored_at) FROM events))"
            " FROM events"
        ).fetchone()
    assert span is not None
    first, last, in_first = span
    return float((n - in_first) / (last - first).total_seconds())


def _publish_all(port: int, events: list[tuple[str, bytes]]) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-pub", protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(20)
    client.connect("127.0.0.1", port)
    client.loop_start()
    pending: list[mqtt.MQTTMessageInfo] = []
    for topic, payload in events:
        pending.append(client.publish(topic, payload, qos=1))
        if len(pending) >= 1000:
            for info in pending:
                info.wait_for_publish(30)
            pending.clear()
    for info in pending:
        info.wait_for_publish(30)
    client.disconnect()
    client.loop_stop()


def _enroll(dsn: str, fleet: Fleet) -> None:
    conn = ledger.connect(dsn)
    ledger.migrate(conn)
    for i, key in enumerate(fleet.pubkeys()):
        ledger.enroll(conn, SITE, fleet.name(i), base64.b64decode(key), replace=False)
    conn.close()


def _vmhwm_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children_cpu(parent: int) -> float:
    """CPU seconds of a process's live children (PostgreSQL's backends and workers)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def ledger_ingest(
    root: Path,
    pg: LocalPostgres,
    broker: LocalBroker,
    fleet: Fleet,
    events: list[tuple[str, bytes]],
    n: int,
) -> tuple[float, int, dict[str, float]]:
    """Events per second stored by `n` consumers draining a queued backlog; peak RSS (kB);
    CPU µs per event of the consumers, PostgreSQL and mosquitto during the drain."""
    dsn = pg.create_database(f"ingest_{n}")
    config = root / f"central-{n}.toml"
    # a shared-subscription group of its own: the other runs' sessions stay apart
    config.write_text(
        CONFIG.format(root=root, prefix=PREFIX, port=broker.port, dsn=dsn, group=f"ingest{n}")
    )
    _enroll(dsn, fleet)
    procs = _consumers(config, n)  # create the sessions and subscriptions
    time.sleep(2.0)
    _stop(procs)
    _publish_all(broker.port, events)  # queued at the broker for the stopped sessions
    assert pg.proc is not None
    assert broker.proc is not None
    pg_before = _children_cpu(pg.proc.pid) + _cpu_seconds(pg.proc.pid)
    mosquitto_before = _cpu_seconds(broker.proc.pid)
    procs = _consumers(config, n)
    rate = _wait_stored(dsn, len(events))
    hwm = max(_vmhwm_kb(p.pid) for p in procs)
    # Backends of idle connections exit with their consumers: read before stopping them.
    cpu = {
        "consumers": sum(_cpu_seconds(p.pid) for p in procs),
        "PostgreSQL": _children_cpu(pg.proc.pid) + _cpu_seconds(pg.proc.pid) - pg_before,
        "mosquitto": _cpu_seconds(broker.proc.pid) - mosquitto_before,
    }
    _stop(procs)
    return rate, hwm, {k: 1e6 * v / len(events) for k, v in cpu.items()}


# --- (4) latency -------------------------------------------------------------------------


def latency(root: Path, pg: LocalPostgres, broker: LocalBroker, fleet: Fleet) -> list[float]:
    """Seconds from publishing each event to the arrival of an ack covering it."""
    dsn = pg.create_database("latency")
    config = root / "central-latency.toml"
    config.write_text(
        CONFIG.format(root=root, prefix=PREFIX, port=broker.port, dsn=dsn, group="latency")
    )
    _enroll(dsn, fleet)
    total = int(RATE * LATENCY_SECONDS)
    events = fleet.batch(total)  # signed up front: the device's cost is not the ledger's
    sent_at: dict[tuple[str, int], float] = {}
    acked_at: dict[tuple[str, int], float] = {}
    lock = threading.Lock()
    highest: dict[str, int] = {}

    def on_ack(c: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
        now = time.perf_counter()
        if msg.retain:  # an ack retained from before this run
            return
        ack = json.loads(msg.payload)
        with lock:
            device = ack["device"]
            for seq in range(highest.get(device, 0) + 1, ack["through"] + 1):
                acked_at[(device, seq)] = now
            highest[device] = max(highest.get(device, 0), ack["through"])

    acks = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-acks", protocol=mqtt.MQTTv5)
    acks.on_message = on_ack
    acks.connect("127.0.0.1", broker.port)
    acks.subscribe(f"{PREFIX}/{SITE}/+/cmd/ack", qos=1)
    acks.loop_start()
    procs = _consumers(config, 1)
    time.sleep(2.0)
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-dev", protocol=mqtt.MQTTv5)
    pub.max_inflight_messages_set(100)
    pub.connect("127.0.0.1", broker.port)
    pub.loop_start()
    start = time.perf_counter()
    for k, (topic, payload) in enumerate(events):
        due = start + k / RATE
        while (now := time.perf_counter()) < due:
            time.sleep(min(0.001, due - now))
        obj_seq = fleet_seq(payload)
        device = topic.split("/")[-2]
        sent_at[(device, obj_seq)] = time.perf_counter()
        pub.publish(topic, payload, qos=1)
    deadline = time.perf_counter() + 30
    while len(acked_at) < total and time.perf_counter() < deadline:
        time.sleep(0.05)
    pub.disconnect()
    pub.loop_stop()
    acks.disconnect()
    acks.loop_stop()
    _stop(procs)
    return [acked_at[k] - sent_at[k] for k in sent_at if k in acked_at]


def autosave_cost(root: Path, queued: int = 100_000) -> tuple[float, float, float]:
    """(wall s, CPU s, MB) of one mosquitto save with `queued` events waiting for a ledger."""
    workdir = root / "autosave"
    workdir.mkdir()
    extra = QUEUE.replace("autosave_interval 10", "autosave_interval 0")  # only on SIGUSR1
    with LocalBroker(workdir=workdir, persistence=True, extra=extra) as broker:
        assert broker.proc is not None
        ledger_session = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id="ledger-bench", protocol=mqtt.MQTTv5
        )
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 3600
        ledger_session.connect("127.0.0.1", broker.port, clean_start=False, properties=props)
        ledger_session.loop_start()
        ledger_session.subscribe(f"$share/ledger/{PREFIX}/+/+/event", qos=1)
        time.sleep(0.5)
        ledger_session.disconnect()
        ledger_session.loop_stop()
        _publish_all(broker.port, Fleet().batch(queued))
        db = workdir / "mosquitto.db"
        before = db.stat().st_mtime_ns if db.exists() else 0
        stat = Path(f"/proc/{broker.proc.pid}/stat")
        cpu0 = sum(int(x) for x in stat.read_text().split()[13:15])
        t0 = time.perf_counter()
        broker.proc.send_signal(signal.SIGUSR1)
        while not db.exists() or db.stat().st_mtime_ns == before:
            time.sleep(0.002)
        wall = time.perf_counter() - t0
        time.sleep(0.5)
        cpu = (sum(int(x) for x in stat.read_text().split()[13:15]) - cpu0) / os.sysconf(
            "SC_CLK_TCK"
        )
        return wall, cpu, db.stat().st_size / 1e6


def fleet_seq(payload: bytes) -> int:
    """The seq of an event payload."""
    seq: int = json.loads(payload)["seq"]
    return seq


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    """Run every part and print the figures with their ratios."""
    print(f"{N} events from {DEVICES} devices; {os.cpu_count()} CPUs")
    fleet = Fleet()
    t0 = time.perf_counter()
    events = fleet.batch(N)
    print(f"  signing the events (not timed below): {time.perf_counter() - t0:.1f} s")
    with (
        tempfile.TemporaryDirectory(prefix="bench-central-") as tmp,
        LocalPostgres(durable=True) as pg,
    ):
        root = Path(tmp)
        broker_dir = root / "broker"
        broker_dir.mkdir()
        with LocalBroker(workdir=broker_dir, persistence=True, extra=QUEUE) as broker:
            copy_rate = bare_copy(pg.create_database("bare"), events)
            verify = {p: bare_verify(events, fleet.pubkeys(), p) for p in (1, 2)}
            ingest = {}
            cpu = {}
            hwm = 0
            for n in (1, 2):
                # each run gets devices of its own, so the ledger starts empty
                run_fleet = Fleet()
                run_events = run_fleet.batch(N)
                ingest[n], peak, cpu[n] = ledger_ingest(root, pg, broker, run_fleet, run_events, n)
                hwm = max(hwm, peak)
            lat = latency(root, pg, broker, Fleet())
        save_wall, save_cpu, save_mb = autosave_cost(root)
    print(f"  (1) bare COPY into PostgreSQL         : {copy_rate:10,.0f} rows/s")
    for p in (1, 2):
        print(f"  (2) bare verify, {p} process(es)       : {verify[p]:10,.0f} events/s")
    for n in (1, 2):
        print(
            f"  (3) ledger ingest, {n} consumer(s)     : {ingest[n]:10,.0f} events/s"
            f"   = {ingest[n] / verify[n]:.2f}x bare verify ({n}p), target >= 0.7;"
            f" {ingest[n] / copy_rate:.2f}x bare COPY"
        )
        print(
            "      CPU per event: "
            + ", ".join(f"{k} {v:.0f} µs" for k, v in cpu[n].items())
            + f" (bare verify: {1e6 / verify[1]:.0f} µs)"
        )
    if lat:
        print(
            f"  (4) scan -> central ack at {RATE:.0f}/s   : p50 {1000 * statistics.median(lat):.1f} ms,"
            f" p99 {1000 * _pct(lat, 0.99):.1f} ms, max {1000 * max(lat):.1f} ms"
            f" ({len(lat)} events; target p99 <= 100 ms)"
        )
    print(f"  (5) consumer peak RSS (VmHWM)         : {hwm / 1024:.1f} MB")
    print(
        f"  (6) mosquitto save, 100k events queued : {1000 * save_wall:.0f} ms wall,"
        f" {1000 * save_cpu:.0f} ms CPU, {save_mb:.1f} MB file (central.conf: every 10 s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
