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
