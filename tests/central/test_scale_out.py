"""Several consumers on one shared subscription give the same ledger as one."""

from __future__ import annotations

import json
import random
from pathlib import Path

from agent.records.signing import sign_event
from central import ledger
from central.config import load
from hardware_sim.broker import LocalBroker
from hardware_sim.postgres import LocalPostgres
from hardware_sim.subscriber import Recorder
from tests.central.conftest import (
    LedgerThread,
    Publisher,
    TestDevice,
    count,
    enroll,
    progress,
    write_config,
)
from tests.harness import wait_until


def _ledger_state(conn: ledger.Connection) -> dict[str, object]:
    with conn.transaction():
        events = conn.execute("SELECT site, device, seq, payload FROM events ORDER BY 1, 2, 3")
        state: dict[str, object] = {"events": [(*r[:3], bytes(r[3])) for r in events.fetchall()]}
        state["progress"] = conn.execute(
            "SELECT site, device, through, head FROM progress ORDER BY 1, 2"
        ).fetchall()
        state["conflicts"] = conn.execute(
            "SELECT site, device, seq, received FROM conflicts ORDER BY 1, 2, 3"
        ).fetchall()
        state["kept_apart"] = conn.execute(
            "SELECT reason, site, device, seq FROM quarantine ORDER BY 1, 2, 3, 4"
        ).fetchall()
        state["alerts"] = conn.execute(
            "SELECT kind, site, device, seq FROM alerts ORDER BY 1, 2, 3, 4"
        ).fetchall()
    return state


def _traffic() -> tuple[list[TestDevice], list[tuple[str, bytes]], list[tuple[str, bytes]]]:
    """Three devices' streams, duplicated in part and shuffled; then a replay and a forgery.

    Which of two different bodies for one seq is stored depends on which is stored first, so
    the bad ones follow once the genuine stream is in, as they would in the field.
    """
    devices = [TestDevice(f"dev-{i}", seed=i + 1) for i in range(3)]
    messages: list[tuple[str, bytes]] = []
    for d in devices:
        events = d.events(300)
        messages += [(d.topic(), e) for e in events]
        messages += [(d.topic(), e) for e in events[::7]]  # at-least-once duplicates
    random.Random(5).shuffle(messages)
    d0 = devices[0]
    replay = sign_event(d0.body(10, "0" * 64), d0.key).payload
    forger = TestDevice("dev-1", seed=99)
    return devices, messages, [(d0.topic(), replay), (forger.topic(), forger.event())]


def test_two_consumers_give_the_same_ledger_as_one(
    tmp_path: Path, pg_server: LocalPostgres, ledger_broker: LocalBroker
) -> None:
    devices, messages, bad = _traffic()
    states = []
    for consumers in (1, 2):
        dsn = pg_server.create_database(f"scale_{consumers}")
        conn = ledger.connect(dsn)
        ledger.migrate(conn)
        enroll(conn, *devices)
        config = load(write_config(tmp_path / f"c{consumers}", dsn, ledger_broker.port))
        runs = [LedgerThread(config).start() for _ in range(consumers)]
        acks = Recorder("127.0.0.1", ledger_broker.port, "tracescan/v1/+/+/cmd/ack")
        assert len({r.consumer.client_id for r in runs}) == consumers
        pub = Publisher(ledger_broker.port)
        try:
            for topic, payload in messages:
                pub.client.publish(topic, payload, qos=1)

            def stored_all(conn: ledger.Connection = conn) -> bool:
                return all(progress(conn, d) == (300, 300) for d in devices)

            def two_alerts(conn: ledger.Connection = conn) -> bool:
                return count(conn, "SELECT count(*) FROM alerts") == 2

            assert wait_until(stored_all, timeout=60)
            for topic, payload in bad:
                pub.send(topic, [payload])
            assert wait_until(two_alerts)
            if consumers == 2:  # both really took part
                assert all(r.consumer.stored.events > 0 for r in runs)
            # Acks of several consumers never go backwards, and end where the ledger is.
            assert acks.wait_for(
                lambda r: (
                    sum(json.loads(m.payload)["through"] == 300 for m in r.messages if not m.retain)
                    >= 3
                )
            )
            live = [m for m in acks.messages if not m.retain]  # not the first run's retained acks
            for d in devices:
                mine = [
                    json.loads(m.payload)["through"] for m in live if f"/{d.device}/" in m.topic
                ]
                assert mine == sorted(mine)
                assert mine[-1] == 300
        finally:
            acks.close()
            pub.close()
            for r in runs:
                r.stop()
        states.append(_ledger_state(conn))
        conn.close()
    assert states[0] == states[1]
