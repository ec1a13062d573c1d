"""A ledger consumer: MQTT 5 shared subscription in, verified batches into PostgreSQL, PUBACKs
out only after the commit.

**Stateless, any number.** Every consumer joins `$share/{group}/…` for the device topics; the
broker hands each message to one of them (round-robin in mosquitto), and all ordering and
uniqueness questions are settled in the database (central/ledger.py).

**Nothing lost between PUBACK and commit.** paho runs with `manual_ack=True`: a message is
acknowledged to the broker only after the transaction that stored it (or its evidence)
committed. A consumer killed in between leaves the message unacknowledged in its session.

**A stable client id.** The broker keeps a consumer's unacknowledged and queued messages in its
persistent session (clean start off, `session_expiry`) and delivers them to whoever connects
with the same client id. Each consumer therefore claims a numbered slot with a PostgreSQL
session advisory lock and connects as `ledger-{group}-{n}`: a consumer that restarts after a
crash takes the lowest free slot, which is the crashed one's, and receives what it left
behind. On a broker whose config sets `use_username_as_clientid` (the shipped central.conf),
the certificate's CN is the client id instead; give each consumer its own certificate.

**Verify and store side by side.** paho's network thread appends arrivals; the verifying
thread takes whatever has arrived (up to `batch_max`) and checks it; the storing thread stores
each batch in one transaction, acknowledges it to the broker, then publishes acks, while the
next batch is being verified. A slow database slows intake instead of growing memory: at most
`mqtt.inflight` (the MQTT 5 Receive Maximum) messages are ever unacknowledged.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import queue
import random
import socket
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final

import paho.mqtt.client as mqtt
import psycopg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from agent.uplink.client import backoff_delay
from agent.uplink.tls import client_context
from central import acks, ledger
from central.config import LedgerConfig
from central.intake import (
    RECORD_KINDS,
    Arrival,
    Classified,
    Quarantined,
    classify,
    split_topic,
)

log = logging.getLogger(__name__)

SWEEP_EVERY: Final = 1.0  # seconds between acks/resend sweeps
KEY_RECHECK: Final = 5.0  # seconds before an unknown device's key is looked up again
_DRAIN_ON_STOP: Final = 1.5  # seconds to keep storing what is still arriving after SIGTERM
_MAX_SLOTS: Final = 1000
#: Fewer messages than this are verified on the consumer's own thread: handing a few to a
#: helper thread costs about what it saves.
_PARALLEL_MIN: Final = 32
_VERIFY_HELPERS: Final = min(3, len(os.sched_getaffinity(0)) - 1)
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _verifier_pool() -> ThreadPoolExecutor:
    global _pool  # noqa: PLW0603 - one process-wide pool, started on first use
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(_VERIFY_HELPERS, thread_name_prefix="verify")
        return _pool


class KeyBook:
    """Enrolled public keys, cached; a miss or a failed signature re-reads the database (at
    most every `KEY_RECHECK` seconds per device), so `enroll --replace` takes effect."""

    def __init__(self, conn: ledger.Connection) -> None:
        self.conn = conn
        self._keys: dict[tuple[str, str], Ed25519PublicKey] = {}
        self._checked: dict[tuple[str, str], float] = {}
        for who, raw in ledger.enrolled_keys(conn).items():
            self._keys[who] = Ed25519PublicKey.from_public_bytes(raw)

    def lookup(self, site: str, device: str) -> Ed25519PublicKey | None:
        """The enrolled key, or None when the device is not enrolled."""
        key = self._keys.get((site, device))
        if key is None and self._stale(site, device):
            self.reload(site, device)
            key = self._keys.get((site, device))
        return key

    def _stale(self, site: str, device: str) -> bool:
        return time.monotonic() - self._checked.get((site, device), -KEY_RECHECK) >= KEY_RECHECK

    def recheck(self, site: str, device: str) -> bool:
        """After a failed signature: True when a different key is enrolled now."""
        if not self._stale(site, device):
            return False
        before = self._keys.get((site, device))
        self.reload(site, device)
        return self._keys.get((site, device)) != before

    def reload(self, site: str, device: str) -> None:
        """Read one device's key again."""
        self._checked[(site, device)] = time.monotonic()
        raw = ledger.enrolled_key(self.conn, site, device)
        if raw is None:
            self._keys.pop((site, device), None)
        else:
            self._keys[(site, device)] = Ed25519PublicKey.from_public_bytes(raw)
        if len(self._checked) > 100_000:  # bounded: a flood of made-up device names
            self._checked.clear()


class Inbox:
    """Arrivals handed from paho's network thread to the consumer thread."""

    def __init__(self) -> None:
        self._items: collections.deque[Arrival] = collections.deque()
        self._cond = threading.Condition()

    def put(self, arrival: Arrival) -> None:
        """Called by paho's thread for each message."""
        with self._cond:
            self._items.append(arrival)
            self._cond.notify()

    def take(self, limit: int, wait: float) -> list[Arrival]:
        """Whatever has arrived (at most `limit`), waiting up to `wait` for the first."""
        with self._cond:
            if not self._items:
                self._cond.wait(wait)
            n = min(limit, len(self._items))
            return [self._items.popleft() for _ in range(n)]


class Consumer:
    """One ledger consumer; `run` returns when `stop` is set."""

    def __init__(self, config: LedgerConfig, key: Ed25519PrivateKey, stop: threading.Event) -> None:
        self.config = config
        self.key = key
        self.stop = stop
        self.inbox = Inbox()
        self.generation = 0  # connections so far: a PUBACK is only sent on the one it came on
        self.client_id = ""
        self.stored = ledger.Stored()  # running totals, for the log and tests
        self.connected = threading.Event()
        self._rng = random.Random()
        self._conn: ledger.Connection | None = None  # the storing thread's
        self._keys_conn: ledger.Connection | None = None  # the verifying thread's
        self._slot_conn: ledger.Connection | None = None
        #: verified batches waiting for the storing thread; two at most, so a slow database
        #: slows intake (and the broker keeps the rest) instead of filling memory
        self._batches: queue.Queue[tuple[Sequence[Arrival], list[Classified]] | None] = queue.Queue(
            maxsize=2
        )
        self._failure: BaseException | None = None
        self._client: mqtt.Client | None = None
        self._keys: KeyBook | None = None
        self._downlink: acks.Downlink | None = None

    # --- set-up --------------------------------------------------------------------------

    def _database(self) -> ledger.Connection:
        db = self.config.database
        conn = ledger.connect(db.dsn, db.connect_timeout)
        ledger.migrate(conn)
        return conn

    def _claim_slot(self) -> str:
        """`ledger-{group}-{n}` for the lowest n no running consumer holds."""
        if self.config.mqtt.client_id:
            return self.config.mqtt.client_id
        db = self.config.database
        conn = ledger.connect(db.dsn, db.connect_timeout)
        conn.autocommit = True  # the session lock lives as long as this connection
        group = self.config.central.group
        for n in range(1, _MAX_SLOTS + 1):
            row = conn.execute(
                "SELECT pg_try_advisory_lock(%s, %s)",
                (ledger.LOCK_SLOT, ledger.lock_key(f"{group}/{n}")),
            ).fetchone()
            if row and row[0]:
                self._slot_conn = conn
                return f"ledger-{group}-{n}"
        conn.close()
        raise ledger.LedgerError(f"more than {_MAX_SLOTS} consumers in group {group!r}")

    def _mqtt(self) -> mqtt.Client:
        cfg = self.config.mqtt
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
            reconnect_on_failure=True,
        )
        if cfg.ca_file or cfg.cert_file:
            client.tls_set_context(client_context(cfg.ca_file, cfg.cert_file, cfg.key_file))
        if cfg.username:
            client.username_pw_set(cfg.username, cfg.password or None)
        # Back quickly after a broker restart: mosquitto (2.0.11) does not restore shared
        # subscriptions from its persistence, so until a consumer subscribes again the devices'
        # events reach no one.
        client.reconnect_delay_set(0.1, cfg.backoff_max)  # type: ignore[arg-type]  # floats work
        client.max_inflight_messages_set(20)  # our own publishes: acks, resends
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def _subscriptions(self) -> list[tuple[str, SubscribeOptions]]:
        prefix = self.config.central.topic_prefix.rstrip("/")
        share = f"$share/{self.config.central.group}/{prefix}/+/+"
        return [(f"{share}/{kind}", SubscribeOptions(qos=1)) for kind in ("event", *RECORD_KINDS)]

    # --- paho callbacks (paho's network thread) --------------------------------------------

    def _on_connect(
        self, client: mqtt.Client, userdata: object, flags: Any, rc: ReasonCode, props: Any
    ) -> None:
        if rc.is_failure:
            log.warning("ledger: broker refused the connection: %s", rc)
            return
        self.generation += 1
        sock = client.socket()
        if isinstance(sock, socket.socket):  # an ssl.SSLSocket is one too
            # paho leaves Nagle on: a PUBACK or an ack would then wait for the broker's delayed
            # TCP ACK (up to 40 ms on Linux) behind the previous small packet.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # Subscribing again on a resumed session is harmless and covers a session that expired.
        client.subscribe(self._subscriptions())
        self.connected.set()
        log.info("ledger: connected as %s", self.client_id)

    def _on_disconnect(
        self, client: mqtt.Client, userdata: object, flags: Any, rc: ReasonCode, props: Any
    ) -> None:
        self.connected.clear()
        if not self.stop.is_set():
            log.warning("ledger: lost the broker (%s); reconnecting", rc)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        try:
            topic = msg.topic
        except UnicodeDecodeError:
            topic = msg._topic.decode("utf-8", "replace")  # evidence, not routing
        self.inbox.put(Arrival(topic, bytes(msg.payload), msg.mid, self.generation, msg.qos))

    def _publish(self, topic: str, payload: bytes, retain: bool) -> acks.Delivery:
        assert self._client is not None
        return self._client.publish(topic, payload, qos=1, retain=retain)

    # --- the consumer thread --------------------------------------------------------------

    def run(self) -> None:
        """Consume until `stop` is set, then store what is in hand and leave cleanly."""
        cfg = self.config
        self._conn = self._database()
        self.client_id = self._claim_slot()
        # The key book reads on the verifying thread: a connection of its own, so its reads
        # never land inside a batch transaction of the storing thread.
        self._keys_conn = ledger.connect(cfg.database.dsn, cfg.database.connect_timeout)
        self._keys = KeyBook(self._keys_conn)
        client = self._client = self._mqtt()
        self._downlink = acks.Downlink(
            self._conn,
            self.key,
            cfg.central.topic_prefix,
            self._publish,
            resend_after=cfg.central.resend_after,
            resend_every=cfg.central.resend_every,
        )
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = cfg.central.session_expiry
        props.ReceiveMaximum = cfg.mqtt.inflight
        client.connect_async(
            cfg.mqtt.host, cfg.mqtt.port, cfg.mqtt.keepalive, clean_start=False, properties=props
        )
        client.loop_start()
        storer = threading.Thread(target=self._store_loop, name="ledger-store", daemon=True)
        storer.start()
        try:
            self._consume()
            self._leave()
        finally:
            self._batches.put(None)
            storer.join(_DRAIN_ON_STOP)
            client.disconnect()
            client.loop_stop()
            self._close_db()
        if self._failure is not None:
            raise self._failure

    def _consume(self) -> None:
        """The verifying thread: take what arrived, verify it, hand it to the storing thread."""
        while not self.stop.is_set():
            batch = self.inbox.take(self.config.central.batch_max, 0.2)
            if batch:
                self._batches.put((batch, self._verify(batch)))

    def _leave(self) -> None:
        """SIGTERM: verify and store what already arrived, then disconnect.

        The subscription stays in the persistent session on purpose: while no consumer runs,
        the broker keeps queueing the devices' events for it (bounded by bytes), and the next
        consumer in this slot receives them. Unsubscribing would let them fall on the floor.
        """
        deadline = time.monotonic() + _DRAIN_ON_STOP
        while time.monotonic() < deadline and self._failure is None:
            batch = self.inbox.take(self.config.central.batch_max, 0.1)
            if not batch:
                break
            self._batches.put((batch, self._verify(batch)))

    def _store_loop(self) -> None:
        """The storing thread: one transaction per batch, then PUBACKs and acks; the sweep.

        Verification of the next batch runs meanwhile on the other thread (the signature
        check and the database round trips both let go of the GIL).
        """
        next_sweep = time.monotonic() + SWEEP_EVERY
        try:
            while True:
                try:
                    item = self._batches.get(timeout=0.2)
                except queue.Empty:
                    pass
                else:
                    if item is None:
                        return
                    self._handle(*item)
                if time.monotonic() >= next_sweep and not self.stop.is_set():
                    self._guarded(self._sweep)
                    next_sweep = time.monotonic() + SWEEP_EVERY
        except BaseException as exc:  # handed to `run`, which re-raises it
            self._failure = exc
            self.stop.set()

    def _sweep(self) -> None:
        assert self._downlink is not None
        if self.connected.is_set():  # offline, acks would only wait for a PUBACK that never comes
            self._downlink.sweep()

    def _handle(self, batch: Sequence[Arrival], classified: Sequence[Classified]) -> None:
        """Store, acknowledge to the broker, publish acks. Retries a batch the database could
        not take (nothing is acknowledged until it is stored), except when stopping."""
        attempt = 0
        while True:
            try:
                stored = self._store(classified)
                break
            except (psycopg.OperationalError, ledger.LedgerError) as exc:
                if self.stop.is_set():
                    log.warning(
                        "ledger: batch not stored at shutdown (%s); the broker keeps it", exc
                    )
                    return
                delay = backoff_delay(attempt, 0.2, self.config.mqtt.backoff_max, self._rng)
                log.warning("ledger: database unavailable (%s); retrying in %.1f s", exc, delay)
                self.stop.wait(delay)
                attempt += 1
                self._reconnect_db()
        self._tally(stored)
        client = self._client
        assert client is not None
        for a in batch:
            if a.qos > 0 and a.generation == self.generation:
                client.ack(a.mid, a.qos)
        for alert in stored.alerts:
            log.warning("ledger alert: %s", alert)
        self._guarded(lambda: self._acknowledge(stored))

    def _acknowledge(self, stored: ledger.Stored) -> None:
        assert self._downlink is not None
        if self.connected.is_set():  # else the sweep sends them once connected again
            self._downlink.acknowledge(stored.advanced.keys(), stored.stale)

    def _verify(self, batch: Sequence[Arrival]) -> list[Classified]:
        """Classify a batch, verifying signatures on this thread and on helper threads.

        Ed25519 verification in `cryptography` lets go of the GIL, so a consumer can use a
        core the database and the broker leave idle. The keys are looked up first, here (the
        key book's connection belongs to this thread); the helpers only read the result.
        """
        assert self._keys is not None
        central = self.config.central
        prefix = central.topic_prefix
        found_keys: dict[tuple[str, str], Ed25519PublicKey | None] = {}
        for arrival in batch:
            where = split_topic(prefix, arrival.topic)
            if where is not None and where[:2] not in found_keys:
                found_keys[where[:2]] = self._keys.lookup(*where[:2])

        def lookup(site: str, device: str) -> Ed25519PublicKey | None:
            return found_keys.get((site, device))

        def part(arrivals: Sequence[Arrival]) -> list[Classified]:
            return [classify(prefix, a, lookup, central.max_payload) for a in arrivals]

        if _VERIFY_HELPERS < 1 or len(batch) < _PARALLEL_MIN:
            results = part(batch)
        else:
            step = -(-len(batch) // (_VERIFY_HELPERS + 1))
            helpers = [
                _verifier_pool().submit(part, batch[i : i + step])
                for i in range(step, len(batch), step)
            ]
            results = part(batch[:step])
            for done in helpers:
                results += done.result()
        for i, found in enumerate(results):
            # A key replaced by `enroll --replace` since it was cached: look again, once.
            if (
                isinstance(found, Quarantined)
                and found.reason == "bad_signature"
                and found.site is not None
                and found.device is not None
                and self._keys.recheck(found.site, found.device)
            ):
                results[i] = classify(prefix, batch[i], self._keys.lookup, central.max_payload)
        return results

    def _store(self, classified: Sequence[Classified]) -> ledger.Stored:
        conn = self._conn
        if conn is None or conn.closed:
            raise ledger.LedgerError("no database connection")
        try:
            return ledger.store(conn, classified)
        except (psycopg.DataError, psycopg.IntegrityError, psycopg.ProgrammingError) as exc:
            # Something in the batch the database will not take (a bug here, or input no check
            # foresaw): store the rest one by one and keep the culprit apart, never stall.
            log.error("ledger: batch refused by the database (%s); storing one by one", exc)
            total = ledger.Stored()
            for item in classified:
                try:
                    part = ledger.store(conn, [item])
                except (psycopg.DataError, psycopg.IntegrityError, psycopg.ProgrammingError) as one:
                    part = ledger.store(conn, [_unstorable(item, one)])
                _merge(total, part)
            return total

    def _tally(self, stored: ledger.Stored) -> None:
        _merge(self.stored, stored)
        del self.stored.alerts[:-100]  # the running totals keep only the latest alerts

    def _guarded(self, step: Any) -> None:
        """Run a downlink step (acks, resend sweep). Whatever goes wrong there is logged and
        retried by the next sweep: it never stops the consumer, which has already stored and
        acknowledged the batch."""
        try:
            step()
        except (psycopg.OperationalError, ledger.LedgerError) as exc:
            log.warning("ledger: downlink step failed (%s); the sweep retries", exc)
            self._reconnect_db()
        except Exception as exc:
            log.error("ledger: downlink step failed (%s); the sweep retries", exc)
            log.debug("downlink step failure", exc_info=exc)

    def _reconnect_db(self) -> None:
        conn = self._conn
        if conn is not None and not conn.closed and not conn.broken:
            return
        try:
            new = ledger.connect(self.config.database.dsn, self.config.database.connect_timeout)
        except ledger.LedgerError as exc:
            log.debug("ledger: %s", exc)
            return
        self._conn = new
        assert self._keys is not None
        assert self._downlink is not None
        self._keys.conn = new
        self._downlink.conn = new

    def _close_db(self) -> None:
        for conn in (self._conn, self._keys_conn, self._slot_conn):
            if conn is not None and not conn.closed:
                conn.close()


def _unstorable(item: Classified, exc: Exception) -> Quarantined:
    import hashlib  # noqa: PLC0415 - only on this rare path

    payload = getattr(item, "payload", b"")
    return Quarantined(
        "unstorable",
        str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__,
        getattr(item, "topic", ""),
        payload,
        hashlib.sha256(payload).digest(),
        getattr(item, "site", None),
        getattr(item, "device", None),
        getattr(item, "seq", None),
    )


def _merge(total: ledger.Stored, part: ledger.Stored) -> None:
    total.events += part.events
    total.duplicates += part.duplicates
    total.conflicts += part.conflicts
    total.quarantined += part.quarantined
    total.records += part.records
    total.alerts.extend(part.alerts)
    total.advanced.update(part.advanced)
    total.stale |= part.stale
