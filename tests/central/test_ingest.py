"""The ledger's intake with real mosquitto and PostgreSQL: store once, verify, keep apart."""

from __future__ import annotations

import base64
import json
import random
import time

from agent.records.signing import sign_event
from agent.records.verify import public_key_from_b64, verify_chain, verify_signature
from central import ledger
from hardware_sim.broker import LocalBroker
from hardware_sim.subscriber import Recorder
from tests.central.conftest import (
    LedgerThread,
    Publisher,
    RunLedger,
    TestDevice,
    count,
    enroll,
    progress,
    stored_seqs,
)
from tests.harness import wait_until


def _central_key(run: LedgerThread) -> str:
    key = run.consumer.key.public_key().public_bytes_raw()
    return base64.b64encode(key).decode()


def test_events_out_of_order_with_duplicates_are_stored_once_and_acked_signed(
    db: ledger.Connection,
    run_ledger: RunLedger,
    publisher: Publisher,
    downlink: Recorder,
    ledger_broker: LocalBroker,
) -> None:
    dev = TestDevice()
    enroll(db, dev)
    run = run_ledger()
    events = dev.events(200)
    shuffled = events + events[:50]  # at-least-once: some arrive twice
    random.Random(1).shuffle(shuffled)
    publisher.send(dev.topic(), shuffled)
    assert wait_until(lambda: progress(db, dev) == (200, 200))
    assert stored_seqs(db, dev) == list(range(1, 201))
    assert list(ledger.export(db, dev.site, dev.device)) == events
    report = verify_chain(list(ledger.export(db, dev.site, dev.device)), dev.key.public_key())
    assert report.ok, report.problems

    central = public_key_from_b64(_central_key(run))
    assert downlink.wait_for(
        lambda r: any(json.loads(m.payload)["through"] == 200 for m in r.on("ack"))
    )
    acks = [json.loads(m.payload) for m in downlink.on("ack")]
    assert all(verify_signature(a, central) for a in acks)
    assert [a["through"] for a in acks] == sorted(a["through"] for a in acks)
    last = acks[-1]
    assert set(last) == {"v", "site", "device", "through", "ts", "sig"}
    assert (last["v"], last["site"], last["device"]) == (1, dev.site, dev.device)
    assert downlink.on("resend") == []
    # retained: a device that connects later (with a clean session) is told at once
    later = Recorder("127.0.0.1", ledger_broker.port, dev.topic("cmd/ack"))
    try:
        assert later.wait_for(lambda r: len(r.messages) == 1)
        (kept,) = later.messages
        assert kept.retain
        assert json.loads(kept.payload)["through"] == 200
    finally:
        later.close()


def _kept_apart(db: ledger.Connection) -> dict[str, int]:
    with db.transaction():
        rows = db.execute("SELECT reason, count(*) FROM quarantine GROUP BY 1").fetchall()
    return {r[0]: int(r[1]) for r in rows}


def test_forged_replayed_and_unenrolled_are_kept_apart_reported_and_not_acked(
    db: ledger.Connection, run_ledger: RunLedger, publisher: Publisher, downlink: Recorder
) -> None:
    dev, stranger = TestDevice("dev-a"), TestDevice("dev-x", seed=9)
    enroll(db, dev)
    run_ledger()
    good = dev.events(5)
    publisher.send(dev.topic(), good[:3])
    assert wait_until(lambda: progress(db, dev) == (3, 3))

    forger = TestDevice("dev-a", seed=3)  # same name, another key
    forger.seq, forger.head = 3, dev.head
    forged = forger.event()  # seq 4, signed with the wrong key
    replay_body = dev.body(2, "0" * 64)  # seq 2 again, different content, valid signature
    replayed = sign_event(replay_body, dev.key).payload
    publisher.send(dev.topic(), [forged, replayed])
    publisher.send(stranger.topic(), stranger.events(2))
    assert wait_until(lambda: count(db, "SELECT count(*) FROM alerts") >= 4)

    assert stored_seqs(db, dev) == [1, 2, 3]
    assert progress(db, dev) == (3, 3)
    assert stored_seqs(db, stranger) == []
    apart = _kept_apart(db)
    assert apart == {"bad_signature": 1, "unenrolled_device": 2}
    with db.transaction():
        conflict = db.execute("SELECT seq, stored, received FROM conflicts").fetchall()
    assert [(c[0], bytes(c[1]), bytes(c[2])) for c in conflict] == [(2, good[1], replayed)]
    with db.transaction():
        kinds = sorted(r[0] for r in db.execute("SELECT kind FROM alerts").fetchall())
    assert kinds == ["bad_signature", "conflict", "unenrolled_device", "unenrolled_device"]

    # The same forged bytes again: the evidence is kept once, no second alert.
    publisher.send(dev.topic(), [forged, replayed])
    assert max(json.loads(m.payload)["through"] for m in downlink.on("ack")) == 3
    publisher.send(dev.topic(), good[3:])
    assert wait_until(lambda: progress(db, dev) == (5, 5))
    assert count(db, "SELECT count(*) FROM alerts") == 4
    assert downlink.wait_for(lambda r: 5 in [json.loads(m.payload)["through"] for m in r.on("ack")])
    assert not any(m.topic.startswith("tracescan/v1/site-01/dev-x/") for m in downlink.on("ack"))


def test_hostile_messages_are_kept_apart_with_a_reason_and_never_stall_the_consumer(
    db: ledger.Connection, run_ledger: RunLedger, publisher: Publisher
) -> None:
    dev = TestDevice()
    enroll(db, dev)
    run = run_ledger()
    body = json.loads(dev.event())
    dev.seq, dev.head = 0, "0" * 64
    wrong_type = json.dumps({**body, "seq": "1"}).encode()
    nul = dev.event(code="8123456\u0000000000001234")
    dev.seq, dev.head = 0, "0" * 64
    hostile = [
        b"\xff\xfe not json",
        b"[1, 2, 3]",
        b"[" * 50_000,  # deep nesting: a RecursionError in the parser
        b"x" * (1 << 20),  # over max_payload
        wrong_type,
        nul,
        b'{"v": 1, "seq": 1e999}',
        b"",
    ]
    publisher.send(dev.topic(), hostile)
    other = TestDevice("dev-b", seed=4)
    publisher.send(dev.topic(), [other.event()])  # body says dev-b, topic says dev-a
    publisher.send("tracescan/v1/site-01/dev-a/event/extra", [b"{}"])
    publisher.send("tracescan/v1/site-01/dev-a/reject", [b"{}"])
    good = dev.events(3)
    publisher.send(dev.topic(), good)
    assert wait_until(lambda: progress(db, dev) == (3, 3))
    apart = _kept_apart(db)
    assert apart == {
        "not_json": 4,
        "too_large": 1,
        "malformed": 4,
        "topic_mismatch": 1,
    }
    with db.transaction():
        big = db.execute("SELECT length(payload) FROM quarantine WHERE reason = 'too_large'")
        assert big.fetchone() == (4096,)
    assert run.failure is None
    assert run.thread.is_alive()


def test_a_broken_prev_link_is_kept_apart_whichever_of_the_two_arrives_second(
    db: ledger.Connection, run_ledger: RunLedger, publisher: Publisher
) -> None:
    dev = TestDevice()
    enroll(db, dev)
    run_ledger()
    events = dev.events(6)
    # seq 4 signed by the device but chained to a made-up predecessor
    bad4 = sign_event(dev.body(4, "ab" * 32), dev.key).payload
    publisher.send(dev.topic(), [events[4], events[5]])  # 5, 6 first: nothing to check yet
    assert wait_until(lambda: stored_seqs(db, dev) == [5, 6])
    publisher.send(dev.topic(), [bad4])  # arrives second: its link to 5 fails
    assert wait_until(lambda: count(db, "SELECT count(*) FROM quarantine") == 1)
    # only now 1..3: in one batch with bad4 they could be checked first, and its link to 3
    # would be the one that fails (kept apart just the same, with another detail)
    publisher.send(dev.topic(), events[:3])
    assert wait_until(lambda: stored_seqs(db, dev) == [1, 2, 3, 5, 6])
    with db.transaction():
        row = db.execute("SELECT reason, detail, seq FROM quarantine").fetchone()
    assert row is not None
    reason, detail, seq = row
    assert (reason, seq) == ("broken_link", 4)
    assert "seq 5" in detail
    assert progress(db, dev) == (3, 6)
    publisher.send(dev.topic(), [events[3]])  # the genuine seq 4 closes the chain
    assert wait_until(lambda: progress(db, dev) == (6, 6))
    assert verify_chain(list(ledger.export(db, dev.site, dev.device)), dev.key.public_key()).ok


def test_a_gap_is_asked_for_with_signed_resend_ranges_and_asked_again_while_open(
    db: ledger.Connection, run_ledger: RunLedger, publisher: Publisher, downlink: Recorder
) -> None:
    dev = TestDevice()
    enroll(db, dev)
    run = run_ledger()
    events = dev.events(20)
    missing = {4, 5, 6, 11}
    publisher.send(dev.topic(), [e for i, e in enumerate(events, 1) if i not in missing])
    assert wait_until(lambda: progress(db, dev) == (3, 20))
    assert downlink.wait_for(lambda r: len(r.on("resend")) >= 2, timeout=15)
    central = public_key_from_b64(_central_key(run))
    asks = [json.loads(m.payload) for m in downlink.on("resend")]
    for ask in asks:
        assert verify_signature(ask, central)
        assert set(ask) == {"v", "site", "device", "ranges", "ts", "sig"}
        assert ask["ranges"] == [[4, 6], [11, 11]]
    assert not any(m.retain for m in downlink.on("resend"))
    publisher.send(dev.topic(), [events[i - 1] for i in sorted(missing)])
    assert wait_until(lambda: progress(db, dev) == (20, 20))
    assert downlink.wait_for(lambda r: json.loads(r.on("ack")[-1].payload)["through"] == 20)
    with db.transaction():
        row = db.execute("SELECT resends FROM downlink").fetchone()
    assert row is not None
    assert row[0] >= 2


def test_a_declared_chain_restart_moves_through_over_numbers_never_used(
    db: ledger.Connection, run_ledger: RunLedger, publisher: Publisher
) -> None:
    dev = TestDevice()
    enroll(db, dev)
    run_ledger()
    first = dev.events(5)
    # the device lost its store: numbering resumes above its high-water mark, chain from zeros
    dev.seq, dev.head = 1029, "0" * 64
    after = dev.events(5)
    publisher.send(dev.topic(), after + first)
    assert wait_until(lambda: progress(db, dev) == (1034, 1034))
    with db.transaction():
        kinds = [r[0] for r in db.execute("SELECT kind FROM alerts").fetchall()]
    assert kinds == ["chain_restart"]


def test_device_rejects_alerts_and_reports_are_stored_once(
    db: ledger.Connection, run_ledger: RunLedger, publisher: Publisher
) -> None:
    dev = TestDevice()
    enroll(db, dev)
    run_ledger()
    reject = dev.record("reject", op="dispense", code="6901234567892", reason="commodity_barcode")
    alert = dev.record("alert", alert="store quarantined", after_seq=0)
    report = dev.record("report", doc="PO-1", matched=[], missing=[], unexpected=[])
    publisher.send(dev.topic("reject"), [reject, reject])
    publisher.send(dev.topic("alert"), [alert])
    publisher.send(dev.topic("report"), [report])
    assert wait_until(lambda: count(db, "SELECT count(*) FROM device_records") == 3)
    with db.transaction():
        rows = db.execute("SELECT kind, reason, payload FROM device_records ORDER BY kind")
        got = [(k, r, bytes(p)) for k, r, p in rows.fetchall()]
    assert got == [
        ("alert", None, alert),
        ("reject", "commodity_barcode", reject),
        ("report", None, report),
    ]


def test_a_broker_gone_while_acks_and_resends_are_due_never_stops_the_consumer(
    db: ledger.Connection, run_ledger: RunLedger, publisher: Publisher, ledger_broker: LocalBroker
) -> None:
    dev = TestDevice()
    enroll(db, dev)
    run = run_ledger()
    events = dev.events(10)
    publisher.send(dev.topic(), events[:3] + events[5:])  # 4..5 missing: a resend is due
    assert wait_until(lambda: progress(db, dev) == (3, 10))
    assert ledger_broker.proc is not None
    ledger_broker.proc.kill()  # the sweep now publishes into a dead connection
    ledger_broker.proc.wait()
    ledger_broker.proc = None
    assert wait_until(lambda: not run.consumer.connected.is_set())
    assert not wait_until(lambda: not run.thread.is_alive(), timeout=3.0)
    ledger_broker.start()
    assert run.consumer.connected.wait(15)
    time.sleep(0.5)  # subscribed again (mosquitto does not persist shared subscriptions)
    again = Publisher(ledger_broker.port)
    try:
        again.send(dev.topic(), events[3:5])
    finally:
        again.close()
    assert wait_until(lambda: progress(db, dev) == (10, 10))
    assert run.failure is None
