"""agent/store: with a central ledger, PUBACKed events wait in `published` until central's
`through` covers them; then they are done, across reopen, and prune tidies the waiting runs."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.store import NewRecord, OutboxReader, Sealer, Store
from agent.store.acks import Run
from tests.store.conftest import make_events


def _rows(reader: OutboxReader, **kw: bool) -> list[int]:
    return [r.rid for r in reader.unsent_between(0, 1 << 30, 100, **kw)]


def test_published_events_stay_unsent_until_central_confirms_them(
    tmp_path: Path, store: Store, sealer: Sealer, signing_key: Ed25519PrivateKey
) -> None:
    events, head = make_events(store, signing_key, 6)
    rids = store.write([*events, NewRecord("reject", b"r")], head)
    reject = rids[-1]
    # the broker took events 1..4 (waiting for central) and the reject (done at once)
    store.write([], None, acked=[reject], published=rids[:4])
    reader = OutboxReader(tmp_path, sealer)
    assert _rows(reader) == rids[:6]
    assert _rows(reader, unpublished=True) == rids[4:6]  # what was never handed over
    assert reader.awaiting_central() == [Run(rids[0], rids[3], reader.awaiting_central()[0].at)]
    # central holds seq 1..5 (5 reached it another way, say a resend answered before a PUBACK)
    store.write([], None, confirmed_through=5)
    assert _rows(reader) == [rids[5]]
    assert reader.awaiting_central() == []
    store.write([], None, confirmed_through=3)  # an older ack (a replay) changes nothing
    assert _rows(reader) == [rids[5]]
    reader.close()
    left = store.unsent_bytes  # the one event central lacks: the capacity still counts it
    assert 0 < left < 2 * len(events[5].payload)
    store.close()
    again = Store(tmp_path, sealer)
    assert again.central_through == 5
    assert again.unsent_bytes == left
    again.close()


def test_a_published_row_acknowledged_twice_is_recorded_once(
    tmp_path: Path, store: Store, sealer: Sealer, signing_key: Ed25519PrivateKey
) -> None:
    events, head = make_events(store, signing_key, 3)
    rids = store.write(events, head)
    store.write([], None, published=rids)
    store.write([], None, published=rids)  # a second PUBACK of a re-publication
    reader = OutboxReader(tmp_path, sealer)
    assert sum(r.hi - r.lo + 1 for r in reader.awaiting_central()) == 3
    store.write([], None, confirmed_through=3)
    store.write([], None, published=rids[:1])  # a late PUBACK after central's ack
    assert reader.awaiting_central() == []
    reader.close()


def test_prune_forgets_waiting_runs_that_central_confirmed(
    tmp_path: Path, store: Store, sealer: Sealer, signing_key: Ed25519PrivateKey
) -> None:
    events, head = make_events(store, signing_key, 4)
    rids = store.write(events, head)
    store.write([], None, published=rids)
    store.write([], None, confirmed_through=4)
    store.prune()
    assert store.conn.execute("SELECT count(*) FROM published").fetchone() == (0,)


def test_events_are_found_by_number_among_rejects_and_done_rows(
    tmp_path: Path, store: Store, sealer: Sealer, signing_key: Ed25519PrivateKey
) -> None:
    by_seq: dict[int, int] = {}
    for _ in range(40):  # events 1..40, each followed by a reject
        events, head = make_events(store, signing_key, 1)
        rids = store.write([events[0], NewRecord("reject", b"r")], head)
        by_seq[head.seq] = rids[0]
    store.write([], None, acked=[by_seq[s] for s in range(5, 11)])  # done without a ledger
    reader = OutboxReader(tmp_path, sealer)
    assert reader.event_rids(3, 12, 100) == [by_seq[s] for s in (3, 4, 11, 12)]
    assert reader.event_rids(38, 99, 100) == [by_seq[s] for s in (38, 39, 40)]
    assert reader.event_rids(20, 30, 4) == [by_seq[s] for s in range(20, 24)]
    assert reader.event_rids(41, 50, 100) == []
    assert reader.event_rids(7, 9, 100) == []  # all done
    reader.close()
    store.write([], None, confirmed_through=30)
    reader = OutboxReader(tmp_path, sealer)
    assert reader.event_rids(1, 40, 100) == [by_seq[s] for s in range(31, 41)]
    reader.close()


def test_a_tampered_central_through_reads_as_none_yet(
    tmp_path: Path, store: Store, sealer: Sealer, signing_key: Ed25519PrivateKey
) -> None:
    events, head = make_events(store, signing_key, 2)
    store.write(events, head)
    store.write([], None, confirmed_through=1)
    store.conn.execute("UPDATE meta SET value = '\u00b2' WHERE key = 'central_through'")
    store.close()
    again = Store(tmp_path, sealer)  # opens: a persisted value is validated, not trusted
    assert again.central_through == 0
    again.close()
