"""Real parts for the ledger's tests: PostgreSQL (one server per session, a database per test),
mosquitto with the shipped central queue settings, in-process and subprocess consumers, and
test devices that sign and chain events with the agent's own record code."""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion

from agent.records.envelope import ZERO_HASH, rfc3339
from agent.records.signing import sign_event, sign_reject
from agent.store import keys
from central import ledger
from central.config import LedgerConfig, load
from central.ingest import Consumer
from hardware_sim.broker import LocalBroker
from hardware_sim.postgres import LocalPostgres
from hardware_sim.subscriber import Recorder
from hardware_sim.workload import unit_codes

REPO = Path(__file__).resolve().parents[2]
CENTRAL_CONF = REPO / "config" / "mosquitto" / "central.conf"
PREFIX = "tracescan/v1"
SITE = "site-01"
#: central.conf's settings that shape the ledger's queue and persistence, applied to the plain
#: test broker (the TLS listener and ACL are tested in test_broker_config.py).
QUEUE_SETTINGS = (
    "max_queued_messages",
    "max_queued_bytes",
    "max_inflight_messages",
    "autosave_interval",
    "set_tcp_nodelay",
)

CONFIG = """\
[central]
key_dir = "{key_dir}"
topic_prefix = "{prefix}"
resend_after = {resend_after}
resend_every = {resend_every}

[mqtt]
host = "127.0.0.1"
port = {port}
keepalive = 5
backoff_max = 1.0
{mqtt}

[database]
dsn = "{dsn}"
"""


def shipped_queue_settings(**override: object) -> str:
    """The shipped central.conf's queue and persistence lines (with `override`s)."""
    lines = []
    for line in CENTRAL_CONF.read_text().splitlines():
        word = line.split(" ", 1)[0]
        if word in QUEUE_SETTINGS and word not in override:
            lines.append(line)
    lines += [f"{k} {v}" for k, v in override.items()]
    return "\n".join(lines)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[LocalPostgres]:
    """One PostgreSQL server for the session (fsync off: the server itself is never killed)."""
    with LocalPostgres(durable=False) as server:
        yield server


@pytest.fixture
def dsn(pg_server: LocalPostgres) -> str:
    """A fresh, empty database for this test."""
    return pg_server.create_database(f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def db(dsn: str) -> Iterator[ledger.Connection]:
    """A connection to the test's ledger (schema created)."""
    conn = ledger.connect(dsn)
    ledger.migrate(conn)
    yield conn
    conn.close()


@pytest.fixture
def ledger_broker(tmp_path: Path) -> Iterator[LocalBroker]:
    """mosquitto, persistent, with the shipped central queue settings."""
    workdir = tmp_path / "broker"
    workdir.mkdir()
    b = LocalBroker(workdir=workdir, persistence=True, extra=shipped_queue_settings()).start()
    yield b
    b.close()


def write_config(
    home: Path,
    dsn: str,
    port: int,
    *,
    resend_after: float = 0.5,
    resend_every: float = 2.0,
    **mqtt_keys: object,
) -> Path:
    """A ledger config under `home`; fast resend timings for tests."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / "central.toml"
    path.write_text(
        CONFIG.format(
            key_dir=home / "keys",
            prefix=PREFIX,
            port=port,
            dsn=dsn,
            resend_after=resend_after,
            resend_every=resend_every,
            mqtt="\n".join(f"{k} = {json.dumps(v)}" for k, v in mqtt_keys.items()),
        )
    )
    return path


class LedgerThread:
    """`central.ingest.Consumer` on a thread of the test process."""

    def __init__(self, config: LedgerConfig) -> None:
        self.config = config
        self.stop_event = threading.Event()
        self.consumer = Consumer(config, keys.signing_key(config.central.key_dir), self.stop_event)
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.consumer.run()
        except BaseException as exc:
            self.failure = exc
            raise

    def start(self) -> LedgerThread:
        """Start and wait until subscribed to the broker."""
        self.thread.start()
        assert self.consumer.connected.wait(15), self.failure
        time.sleep(0.2)  # the SUBACK follows the CONNACK
        return self

    def stop(self) -> None:
        """As on SIGTERM."""
        self.stop_event.set()
        self.thread.join(10)
        assert not self.thread.is_alive()


class LedgerProcess:
    """`python -m central run` as a child process (for kill -9 and SIGTERM)."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> LedgerProcess:
        """Launch it."""
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "central", "run", "--config", str(self.config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        return self

    def terminate(self, timeout: float = 10.0) -> tuple[int, str]:
        """SIGTERM; (exit status, stderr)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, err

    def kill9(self) -> None:
        """SIGKILL mid-whatever."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.communicate(timeout=10)

    def stop(self) -> None:
        """Make sure it is gone."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate(timeout=10)


@pytest.fixture
def ledger_config(tmp_path: Path, dsn: str, ledger_broker: LocalBroker) -> LedgerConfig:
    """The ledger's config for this test's database and broker."""
    return load(write_config(tmp_path / "central", dsn, ledger_broker.port))


#: The `run_ledger` fixture: start a consumer thread of the ledger.
RunLedger = Callable[..., "LedgerThread"]


@pytest.fixture
def run_ledger(ledger_config: LedgerConfig) -> Iterator[RunLedger]:
    """Start in-process consumers (same config); all are stopped at the end."""
    made: list[LedgerThread] = []

    def start(config: LedgerConfig | None = None) -> LedgerThread:
        t = LedgerThread(config or ledger_config).start()
        made.append(t)
        return t

    yield start
    for t in made:
        if t.thread.is_alive():
            t.stop()


# --- test devices ------------------------------------------------------------------------


class TestDevice:
    """Signs and chains events the way the agent does (agent/records), for one device."""

    __test__ = False

    def __init__(self, device: str = "dev-a", site: str = SITE, *, seed: int = 7) -> None:
        self.site = site
        self.device = device
        self.key = Ed25519PrivateKey.generate()
        self.codes = iter(unit_codes(100_000, seed=seed, start=seed * 100_000))
        self.head = ZERO_HASH
        self.seq = 0
        self._ids = itertools.count(1)

    @property
    def pubkey(self) -> str:
        """What `tracescan pubkey` prints."""
        return base64.b64encode(self.key.public_key().public_bytes_raw()).decode()

    def body(self, seq: int, prev: str, **fields: Any) -> dict[str, Any]:
        """An event body (unsigned)."""
        code = fields.pop("code", None) or next(self.codes)
        op = fields.pop("op", "dispense")
        ts = fields.pop("ts", None) or rfc3339(time.time())
        kind = fields.pop("kind", "cn20")
        extra = {"product_code": code[:7]} if kind == "cn20" else {}
        return {
            "v": 1,
            "id": f"{self.device}-{next(self._ids)}",
            "device": self.device,
            "site": self.site,
            "seq": seq,
            "op": op,
            "code": code,
            "kind": kind,
            "level": "unit",
            "fields": {**extra, **fields},
            "ts": ts,
            "doc": None,
            "prev": prev,
        }

    def event(self, **fields: Any) -> bytes:
        """The next event of the chain, signed."""
        self.seq += 1
        sealed = sign_event(self.body(self.seq, self.head, **fields), self.key)
        self.head = sealed.head.hash
        return sealed.payload

    def events(self, n: int, **fields: Any) -> list[bytes]:
        """The next `n` events."""
        return [self.event(**fields) for _ in range(n)]

    def record(self, kind: str, **members: Any) -> bytes:
        """A signed reject/alert/report record (no seq)."""
        body = {
            "v": 1,
            "id": f"{self.device}-{next(self._ids)}",
            "device": self.device,
            "site": self.site,
            "ts": rfc3339(time.time()),
            **members,
        }
        return sign_reject(body, self.key)

    def topic(self, kind: str = "event") -> str:
        """This device's topic of `kind`."""
        return f"{PREFIX}/{self.site}/{self.device}/{kind}"


class Publisher:
    """A plain paho QoS 1 publisher that waits for every PUBACK."""

    def __init__(self, port: int) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"pub-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        self.client.max_inflight_messages_set(100)
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.loop_start()

    def send(self, topic: str, payloads: list[bytes]) -> None:
        """Publish each payload at QoS 1 and wait until the broker took all of them."""
        infos = [self.client.publish(topic, p, qos=1) for p in payloads]
        for info in infos:
            info.wait_for_publish(10)
            assert info.is_published()

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def publisher(ledger_broker: LocalBroker) -> Iterator[Publisher]:
    """Publishes as devices would (the broker has no ACL here)."""
    p = Publisher(ledger_broker.port)
    yield p
    p.close()


@pytest.fixture
def downlink(ledger_broker: LocalBroker) -> Iterator[Recorder]:
    """Records what central sends down: cmd/ack, cmd/resend, master data."""
    r = Recorder("127.0.0.1", ledger_broker.port, f"{PREFIX}/#")
    yield r
    r.close()


def enroll(conn: ledger.Connection, *devices: TestDevice) -> None:
    """Register test devices' keys."""
    for d in devices:
        ledger.enroll(conn, d.site, d.device, d.key.public_key().public_bytes_raw(), replace=False)


def progress(conn: ledger.Connection, device: TestDevice) -> tuple[int, int]:
    """(through, head) of a device."""
    with conn.transaction():
        row = conn.execute(
            "SELECT through, head FROM progress WHERE site = %s AND device = %s",
            (device.site, device.device),
        ).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def stored_seqs(conn: ledger.Connection, device: TestDevice) -> list[int]:
    """The seqs stored for a device, ascending."""
    with conn.transaction():
        rows = conn.execute(
            "SELECT seq FROM events WHERE site = %s AND device = %s ORDER BY seq",
            (device.site, device.device),
        ).fetchall()
    return [int(r[0]) for r in rows]


def count(conn: ledger.Connection, query: str, *params: object) -> int:
    """A `SELECT count(*) ...`."""
    with conn.transaction():
        row = conn.execute(query, params).fetchone()
    assert row is not None
    return int(row[0])


def today() -> str:
    """Today's date in UTC, as the report's days are."""
    return dt.datetime.now(dt.UTC).date().isoformat()
