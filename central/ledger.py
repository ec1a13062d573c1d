"""The ledger in PostgreSQL: schema, enrolment, and storing a batch of verified messages.

PostgreSQL is the single source of truth, so consumers hold no state and need no partitioning:

- `events` is append-only (a trigger refuses UPDATE and DELETE) with (site, device, seq) unique;
  `payload` is the exact bytes the device published, so `export` is byte-identical.
- A batch is one transaction. It first takes a transaction-scoped advisory lock per device it
  touches (sorted, so two consumers never deadlock). With the lock held, the stored neighbours
  of every new event are read, so a `prev` link is checked by whichever of the two events is
  stored second, and a seq stored by another consumer a moment ago is seen, not raced.
- `progress` holds per device the highest contiguous seq stored (`through`), the highest seq
  seen (`head`) and since when a gap has been open; it only moves under the device's lock.

The rule for `through`: seq starts at 1; a missing seq stops it, except right before an event
whose `prev` is 64 zeros. That is the device's own signed statement that its chain restarts
there (after losing its store it resumes numbering above its high-water mark, and numbers in
between were never used), so `through` continues from it and a `chain_restart` alert says so.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import psycopg
import psycopg.errors

from central import custody
from central.intake import ZERO_PREV, DeviceRecord, Quarantined, VerifiedEvent

SCHEMA_VERSION: Final = 1
#: Advisory lock classes (the first key of `pg_advisory_xact_lock(int, int)`).
LOCK_SCHEMA: Final = 0
LOCK_DEVICE: Final = 1  # storing a device's events and moving its `through`
LOCK_DOWNLINK: Final = 2  # publishing a device's ack (central/acks.py)
LOCK_CODE: Final = 3  # custody of one unit code (central/custody.py)
LOCK_SLOT: Final = 4  # a consumer's slot, for a stable MQTT client id (central/ingest.py)
#: Rows read per step when walking `through` over a long run of stored events.
_WALK_STEP: Final = 10_000

Connection = psycopg.Connection[tuple[Any, ...]]
Cursor = psycopg.Cursor[tuple[Any, ...]]

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS ledger_schema (version integer NOT NULL);
CREATE TABLE IF NOT EXISTS devices (
    site text NOT NULL, device text NOT NULL,
    pubkey bytea NOT NULL CHECK (length(pubkey) = 32),
    enrolled_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (site, device));
CREATE TABLE IF NOT EXISTS enrollments (
    id bigserial PRIMARY KEY, site text NOT NULL, device text NOT NULL,
    pubkey bytea NOT NULL, replaced bytea, at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS events (
    site text NOT NULL, device text NOT NULL, seq bigint NOT NULL,
    prev bytea NOT NULL, hash bytea NOT NULL,
    op text NOT NULL, code text NOT NULL, level text NOT NULL, ts timestamptz NOT NULL,
    stored_at timestamptz NOT NULL DEFAULT now(),
    payload bytea NOT NULL,
    PRIMARY KEY (site, device, seq));
CREATE INDEX IF NOT EXISTS events_by_day ON events (ts);
CREATE TABLE IF NOT EXISTS conflicts (
    id bigserial PRIMARY KEY, site text NOT NULL, device text NOT NULL, seq bigint NOT NULL,
    stored bytea NOT NULL, received bytea NOT NULL, digest bytea NOT NULL,
    at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (site, device, seq, digest));
CREATE TABLE IF NOT EXISTS quarantine (
    id bigserial PRIMARY KEY, reason text NOT NULL, detail text NOT NULL, topic text NOT NULL,
    site text, device text, seq bigint, payload bytea NOT NULL, digest bytea NOT NULL,
    at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (digest, reason));
CREATE TABLE IF NOT EXISTS device_records (
    digest bytea PRIMARY KEY, site text NOT NULL, device text NOT NULL, kind text NOT NULL,
    reason text, ts timestamptz NOT NULL, stored_at timestamptz NOT NULL DEFAULT now(),
    payload bytea NOT NULL);
CREATE INDEX IF NOT EXISTS device_records_by_day ON device_records (ts);
CREATE TABLE IF NOT EXISTS alerts (
    id bigserial PRIMARY KEY, kind text NOT NULL, site text, device text, seq bigint,
    message text NOT NULL, at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS progress (
    site text NOT NULL, device text NOT NULL,
    through bigint NOT NULL DEFAULT 0, head bigint NOT NULL DEFAULT 0,
    gap_since timestamptz,
    PRIMARY KEY (site, device));
CREATE TABLE IF NOT EXISTS downlink (
    site text NOT NULL, device text NOT NULL,
    acked_through bigint NOT NULL DEFAULT 0, ack_at timestamptz,
    resend_at timestamptz, resends integer NOT NULL DEFAULT 0, ranges text,
    PRIMARY KEY (site, device));
CREATE TABLE IF NOT EXISTS custody (
    code text NOT NULL, ts timestamptz NOT NULL, op text NOT NULL,
    site text NOT NULL, device text NOT NULL, seq bigint NOT NULL, void_of bigint,
    PRIMARY KEY (site, device, seq));
CREATE INDEX IF NOT EXISTS custody_by_code ON custody (code, ts);
CREATE INDEX IF NOT EXISTS custody_voids ON custody (site, device, void_of)
    WHERE void_of IS NOT NULL;
CREATE TABLE IF NOT EXISTS master_versions (
    site text NOT NULL, device text NOT NULL, kind text NOT NULL, version bigint NOT NULL,
    issued timestamptz NOT NULL, digest bytea NOT NULL, payload bytea NOT NULL,
    PRIMARY KEY (site, device, kind, version));
CREATE OR REPLACE FUNCTION tracescan_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'tracescan ledger: % is append-only (% refused)', TG_TABLE_NAME, TG_OP;
END $$;
DROP TRIGGER IF EXISTS events_append_only ON events;
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION tracescan_append_only();
DROP TRIGGER IF EXISTS conflicts_append_only ON conflicts;
CREATE TRIGGER conflicts_append_only BEFORE UPDATE OR DELETE ON conflicts
    FOR EACH ROW EXECUTE FUNCTION tracescan_append_only();
DROP TRIGGER IF EXISTS quarantine_append_only ON quarantine;
CREATE TRIGGER quarantine_append_only BEFORE UPDATE OR DELETE ON quarantine
    FOR EACH ROW EXECUTE FUNCTION tracescan_append_only();
"""


class LedgerError(Exception):
    """The database cannot be reached or used; the message names what and how to fix it."""


def _masked(dsn: str) -> str:
    """The DSN without its password, for messages."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "(unparseable dsn)"
    if "password" in info:
        info["password"] = "***"  # noqa: S105 - the mask itself
    return psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in info.items()})


def connect(dsn: str, timeout: int = 10) -> Connection:
    """Open a connection (not autocommit: every batch is one explicit transaction)."""
    try:
        return psycopg.connect(dsn, connect_timeout=timeout, application_name="tracescan-central")
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LedgerError(
            f"database.dsn: cannot connect to {_masked(dsn)}: {first}"
            " (is PostgreSQL running, and do the user and database exist?)"
        ) from exc


def migrate(conn: Connection) -> None:
    """Create or update the schema; idempotent, safe with several consumers starting at once.

    A ledger already at this version is left alone: DDL on `events` would need an exclusive
    lock and deadlock against consumers storing batches.
    """
    for attempt in range(5):
        try:
            with conn.transaction():
                if _version(conn) == SCHEMA_VERSION:
                    return
                conn.execute("SELECT pg_advisory_xact_lock(%s, 0)", (LOCK_SCHEMA,))
                found = _version(conn)
                if found is not None and found > SCHEMA_VERSION:
                    raise LedgerError(
                        f"the ledger's schema is version {found}, newer than this program's"
                        f" {SCHEMA_VERSION}: upgrade tracescan-central"
                    )
                if found != SCHEMA_VERSION:
                    conn.execute(_SCHEMA)
                    conn.execute("INSERT INTO ledger_schema VALUES (%s)", (SCHEMA_VERSION,))
        except psycopg.errors.TransactionRollback:
            if attempt == 4:
                raise
            time.sleep(0.1 * (attempt + 1))
        else:
            return


def _version(conn: Connection) -> int | None:
    row = conn.execute("SELECT to_regclass('ledger_schema') IS NOT NULL").fetchone()
    if not row or not row[0]:
        return None
    found = conn.execute("SELECT max(version) FROM ledger_schema").fetchone()
    return int(found[0]) if found and found[0] is not None else None


def lock_key(text: str) -> int:
    """A stable signed 32-bit key for an advisory lock on `text` (collisions only serialise)."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big", signed=True)


def lock_all(cur: Cursor, lock_class: int, names: Sequence[str]) -> None:
    """Transaction-scoped advisory locks, taken in key order so that no two batches deadlock."""
    keys = sorted({lock_key(n) for n in names})
    if keys:
        cur.execute(
            "SELECT count(pg_advisory_xact_lock(%s, k)) FROM unnest(%b::int4[]) AS k",
            (lock_class, keys),
        )


# --- enrolment ---------------------------------------------------------------------------


def enroll(conn: Connection, site: str, device: str, pubkey: bytes, *, replace: bool) -> str:
    """Register a device's key; a different key for an enrolled device needs `replace`."""
    with conn.transaction():
        row = conn.execute(
            "SELECT pubkey FROM devices WHERE site = %s AND device = %s FOR UPDATE", (site, device)
        ).fetchone()
        old = bytes(row[0]) if row else None
        if old == pubkey:
            return "already enrolled with this key"
        if old is not None and not replace:
            raise LedgerError(
                f"{site}/{device} is enrolled with another key; pass --replace to replace it"
                " (events already stored stay as they are)"
            )
        conn.execute(
            "INSERT INTO devices (site, device, pubkey) VALUES (%s, %s, %s)"
            " ON CONFLICT (site, device) DO UPDATE SET pubkey = EXCLUDED.pubkey,"
            " enrolled_at = now()",
            (site, device, pubkey),
        )
        conn.execute(
            "INSERT INTO enrollments (site, device, pubkey, replaced) VALUES (%s, %s, %s, %s)",
            (site, device, pubkey, old),
        )
        return "key replaced" if old is not None else "enrolled"


def enrolled_keys(conn: Connection) -> dict[tuple[str, str], bytes]:
    """Every enrolled device's raw public key."""
    with conn.transaction():
        rows = conn.execute("SELECT site, device, pubkey FROM devices").fetchall()
    return {(r[0], r[1]): bytes(r[2]) for r in rows}


def enrolled_key(conn: Connection, site: str, device: str) -> bytes | None:
    """One device's raw public key, or None."""
    with conn.transaction():
        row = conn.execute(
            "SELECT pubkey FROM devices WHERE site = %s AND device = %s", (site, device)
        ).fetchone()
    return bytes(row[0]) if row else None


# --- storing a batch ---------------------------------------------------------------------


@dataclass(slots=True)
class Stored:
    """What one committed batch did."""

    events: int = 0
    duplicates: int = 0
    conflicts: int = 0
    quarantined: int = 0
    records: int = 0
    alerts: list[str] = field(default_factory=list)
    #: devices whose `through` moved, and where to
    advanced: dict[tuple[str, str], int] = field(default_factory=dict)
    #: devices that re-sent what is already confirmed: they may have missed their ack
    stale: set[tuple[str, str]] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class _Link:
    prev: bytes
    hash: bytes

    @property
    def starts_chain(self) -> bool:
        return self.prev == ZERO_PREV


def _neighbours(
    cur: Cursor, events: Sequence[VerifiedEvent]
) -> tuple[dict[tuple[str, str, int], _Link], dict[tuple[str, str, int], bytes]]:
    """Stored links of each event's seq-1, seq and seq+1, and stored payloads at each seq."""
    want: dict[tuple[str, str, int], bool] = {}
    for e in events:
        for seq in (e.seq - 1, e.seq + 1):
            want.setdefault((e.site, e.device, seq), False)
        want[e.key] = True
    sites, devices, seqs, payload = zip(*((*k, w) for k, w in want.items()), strict=True)
    cur.execute(
        "SELECT e.site, e.device, e.seq, e.prev, e.hash, CASE WHEN t.w THEN e.payload END"
        " FROM unnest(%b::text[], %b::text[], %b::int8[], %b::bool[]) AS t(s, d, q, w)"
        " JOIN events e ON e.site = t.s AND e.device = t.d AND e.seq = t.q",
        (list(sites), list(devices), list(seqs), list(payload)),
    )
    links: dict[tuple[str, str, int], _Link] = {}
    payloads: dict[tuple[str, str, int], bytes] = {}
    for site, device, seq, prev, hash_, body in cur:
        links[(site, device, seq)] = _Link(bytes(prev), bytes(hash_))
        if body is not None:
            payloads[(site, device, seq)] = bytes(body)
    return links, payloads


def _link_problem(
    e: VerifiedEvent, links: dict[tuple[str, str, int], _Link]
) -> tuple[str | None, bool]:
    """Why `e` cannot join its stored neighbours (or None), and whether it restarts the chain."""
    if e.seq == 1:
        if not e.starts_chain:
            return "seq 1 must have prev = 64 zeros", False
    elif e.starts_chain:
        pass  # a declared restart: not linked to seq-1 by the device's own statement
    else:
        before = links.get((e.site, e.device, e.seq - 1))
        if before is not None and before.hash != e.prev:
            return f"prev does not match the stored seq {e.seq - 1}", False
    after = links.get((e.site, e.device, e.seq + 1))
    if after is not None and not after.starts_chain and after.prev != e.hash:
        return f"the stored seq {e.seq + 1} does not chain to this body", False
    return None, e.starts_chain and e.seq > 1


def store(conn: Connection, batch: Sequence[Any]) -> Stored:
    """Store one batch of classified messages in one transaction and return what it did.

    Events are checked against what is stored (duplicate, conflict, `prev` links) under their
    devices' locks; side records and quarantined messages are stored once per digest.
    """
    out = Stored()
    events = [m for m in batch if isinstance(m, VerifiedEvent)]
    records = [m for m in batch if isinstance(m, DeviceRecord)]
    kept_apart = [m for m in batch if isinstance(m, Quarantined)]
    conflicts: list[tuple[VerifiedEvent, bytes]] = []
    restarts: list[VerifiedEvent] = []
    with conn.transaction(), conn.cursor() as cur:
        accepted: list[VerifiedEvent] = []
        if events:
            lock_all(cur, LOCK_DEVICE, [f"{e.site}/{e.device}" for e in events])
            links, payloads = _neighbours(cur, events)
            pending: dict[tuple[str, str, int], bytes] = {}
            for e in sorted(events, key=lambda e: e.key):
                known = payloads.get(e.key, pending.get(e.key))
                if known is not None:
                    if known == e.payload:
                        out.duplicates += 1
                    else:
                        conflicts.append((e, known))
                    continue
                problem, restart = _link_problem(e, links)
                if problem is not None:
                    kept_apart.append(
                        Quarantined(
                            "broken_link",
                            problem,
                            f"{e.site}/{e.device}/event",
                            e.payload,
                            hashlib.sha256(e.payload).digest(),
                            e.site,
                            e.device,
                            e.seq,
                        )
                    )
                    continue
                if restart:
                    restarts.append(e)
                links[e.key] = _Link(e.prev, e.hash)
                pending[e.key] = e.payload
                accepted.append(e)
            _insert_events(cur, accepted)
            out.events = len(accepted)
        _insert_conflicts(cur, conflicts, out)
        _insert_quarantine(cur, kept_apart, out)
        out.records = _insert_records(cur, records)
        for e in restarts:
            _alert(
                cur,
                out,
                "chain_restart",
                f"{e.site}/{e.device} restarted its hash chain at seq {e.seq} (prev = zeros);"
                " numbers before it that are missing were never used after its store reset",
                site=e.site,
                device=e.device,
                seq=e.seq,
            )
        for kind, e, other in custody.record(cur, accepted):
            _alert(
                cur,
                out,
                kind,
                f"回流: unit {e.code} {e.op} at {e.site}/{e.device} seq {e.seq} and"
                f" {other.op} at {other.site}/{other.device} seq {other.seq}"
                " with no customer_return between",
                site=e.site,
                device=e.device,
                seq=e.seq,
            )
        devices = sorted({(e.site, e.device) for e in events})
        if devices:
            through = _advance(cur, devices, accepted, out)
            for e in events:
                if e.key in payloads and e.seq <= through.get((e.site, e.device), 0):
                    out.stale.add((e.site, e.device))
    return out


def _insert_events(cur: Cursor, events: Sequence[VerifiedEvent]) -> None:
    if not events:
        return
    cur.execute(
        "INSERT INTO events (site, device, seq, prev, hash, op, code, level, ts, payload)"
        " SELECT * FROM unnest(%b::text[], %b::text[], %b::int8[], %b::bytea[], %b::bytea[],"
        " %b::text[], %b::text[], %b::text[], %b::timestamptz[], %b::bytea[])",
        (
            [e.site for e in events],
            [e.device for e in events],
            [e.seq for e in events],
            [e.prev for e in events],
            [e.hash for e in events],
            [e.op for e in events],
            [e.code for e in events],
            [e.level for e in events],
            [e.ts for e in events],
            [e.payload for e in events],
        ),
    )


def _alert(
    cur: Cursor,
    out: Stored,
    kind: str,
    message: str,
    *,
    site: str | None,
    device: str | None,
    seq: int | None,
) -> None:
    cur.execute(
        "INSERT INTO alerts (kind, site, device, seq, message) VALUES (%s, %s, %s, %s, %s)",
        (kind, site, device, seq, message),
    )
    out.alerts.append(f"{kind}: {message}")


def _insert_conflicts(
    cur: Cursor, conflicts: Sequence[tuple[VerifiedEvent, bytes]], out: Stored
) -> None:
    """A second, different body for a stored seq: evidence (both bodies) and an alert, once."""
    for e, stored in conflicts:
        cur.execute(
            "INSERT INTO conflicts (site, device, seq, stored, received, digest)"
            " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING id",
            (e.site, e.device, e.seq, stored, e.payload, hashlib.sha256(e.payload).digest()),
        )
        if cur.fetchone() is not None:
            out.conflicts += 1
            _alert(
                cur,
                out,
                "conflict",
                f"{e.site}/{e.device} seq {e.seq} arrived again with a different signed body"
                " (a rollback or a forgery); both bodies are kept in `conflicts`",
                site=e.site,
                device=e.device,
                seq=e.seq,
            )


def _insert_quarantine(cur: Cursor, kept: Sequence[Quarantined], out: Stored) -> None:
    """Evidence kept apart, once per (digest, reason), each new one with an alert."""
    for q in kept:
        cur.execute(
            "INSERT INTO quarantine (reason, detail, topic, site, device, seq, payload, digest)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING id",
            (
                q.reason,
                q.detail.replace("\x00", "\\0"),
                q.topic.replace("\x00", "\\0"),
                q.site,
                q.device,
                q.seq,
                q.payload,
                q.digest,
            ),
        )
        if cur.fetchone() is not None:
            out.quarantined += 1
            where = f"{q.site}/{q.device}" if q.site else q.topic.replace("\x00", "\\0")[:200]
            seq = f" seq {q.seq}" if q.seq is not None else ""
            _alert(
                cur,
                out,
                q.reason,
                f"{where}{seq}: {q.detail}",
                site=q.site,
                device=q.device,
                seq=q.seq,
            )


def _insert_records(cur: Cursor, records: Sequence[DeviceRecord]) -> int:
    if not records:
        return 0
    cur.execute(
        "INSERT INTO device_records (digest, site, device, kind, reason, ts, payload)"
        " SELECT * FROM unnest(%b::bytea[], %b::text[], %b::text[], %b::text[], %b::text[],"
        " %b::timestamptz[], %b::bytea[]) ON CONFLICT DO NOTHING",
        (
            [r.digest for r in records],
            [r.site for r in records],
            [r.device for r in records],
            [r.kind for r in records],
            [r.reason for r in records],
            [r.ts for r in records],
            [r.payload for r in records],
        ),
    )
    return cur.rowcount


def _walk(cur: Cursor, site: str, device: str, through: int) -> int:
    """The new `through`: over contiguous stored seqs, and over gaps a chain restart declares."""
    while True:
        cur.execute(
            "SELECT seq, prev FROM events WHERE site = %s AND device = %s AND seq > %s"
            " ORDER BY seq LIMIT 1",
            (site, device, through),
        )
        row = cur.fetchone()
        if row is None:
            return through
        first, prev = row[0], bytes(row[1])
        if first != through + 1 and prev != ZERO_PREV:
            return through
        # The end of the run of consecutive seqs starting at `first`: seq - row_number() is
        # constant along a run and grows at the first hole.
        cur.execute(
            "SELECT max(seq) FROM (SELECT seq, seq - row_number() OVER (ORDER BY seq) AS d"
            " FROM (SELECT seq FROM events WHERE site = %s AND device = %s AND seq >= %s"
            " ORDER BY seq LIMIT %s) AS a) AS b WHERE d = %s",
            (site, device, first, _WALK_STEP, first - 1),
        )
        end = cur.fetchone()
        assert end is not None
        assert end[0] is not None
        through = int(end[0])


def _advance(
    cur: Cursor,
    devices: Sequence[tuple[str, str]],
    accepted: Sequence[VerifiedEvent],
    out: Stored,
) -> dict[tuple[str, str], int]:
    """Move each device's `through` and `head`; note since when a gap has been open.

    Returns each device's `through` after the batch. One statement finds, for every device
    at once, the run of stored seqs that starts right after its `through` (the usual case);
    only a device still missing something afterwards is walked on its own, for a declared
    chain restart beyond the hole.
    """
    sites, names = zip(*devices, strict=True)
    cur.execute(
        "WITH t AS (SELECT * FROM unnest(%b::text[], %b::text[]) AS t(site, device)),"
        " p AS (INSERT INTO progress (site, device) SELECT * FROM t ON CONFLICT DO NOTHING)"
        # the downlink row is what acks.py locks and marks
        " INSERT INTO downlink (site, device) SELECT * FROM t ON CONFLICT DO NOTHING",
        (list(sites), list(names)),
    )
    cur.execute(
        "SELECT p.site, p.device, p.through, p.head, p.gap_since IS NOT NULL,"
        " (SELECT max(seq) FROM (SELECT seq, seq - row_number() OVER (ORDER BY seq) AS d"
        " FROM (SELECT seq FROM events e WHERE e.site = p.site AND e.device = p.device"
        " AND e.seq > p.through ORDER BY seq LIMIT %b) AS a) AS b WHERE d = p.through)"
        " FROM progress p JOIN unnest(%b::text[], %b::text[]) AS t(s, d)"
        " ON p.site = t.s AND p.device = t.d",
        (_WALK_STEP, list(sites), list(names)),
    )
    rows = cur.fetchall()
    heads: dict[tuple[str, str], int] = {}
    for e in accepted:
        heads[(e.site, e.device)] = max(heads.get((e.site, e.device), 0), e.seq)
    updates = []
    after: dict[tuple[str, str], int] = {}
    for site, device, through, head, gap_open, run_end in rows:
        new_through = through
        if (site, device) in heads:
            new_through = max(through, run_end or 0)
            new_head = max(head, heads[(site, device)], new_through)
            if new_head > new_through or new_through - through == _WALK_STEP:
                new_through = _walk(cur, site, device, new_through)
        new_head = max(head, heads.get((site, device), 0), new_through)
        after[(site, device)] = new_through
        if new_through > through:
            out.advanced[(site, device)] = new_through
        # A gap is "open since" the last time `through` moved: out-of-order arrivals that fill
        # in at once never look like a gap to the resend sweep.
        if new_head == new_through:
            gap = "none"
        elif new_through > through or not gap_open:
            gap = "now"
        else:
            gap = "keep"
        updates.append((site, device, new_through, new_head, gap))
    cur.execute(
        "UPDATE progress p SET through = t.through, head = t.head,"
        " gap_since = CASE t.gap WHEN 'none' THEN NULL WHEN 'now' THEN now() ELSE p.gap_since END"
        " FROM unnest(%b::text[], %b::text[], %b::int8[], %b::int8[], %b::text[])"
        " AS t(site, device, through, head, gap)"
        " WHERE p.site = t.site AND p.device = t.device",
        tuple(list(col) for col in zip(*updates, strict=True)),
    )
    return after


# --- reading -----------------------------------------------------------------------------


def export(conn: Connection, site: str, device: str) -> Iterator[bytes]:
    """The device's stored events in seq order, each exactly as the device published it."""
    with conn.transaction(), conn.cursor(name="export") as cur:
        cur.itersize = 2000
        cur.execute(
            "SELECT payload FROM events WHERE site = %s AND device = %s ORDER BY seq",
            (site, device),
        )
        for (payload,) in cur:
            yield bytes(payload)


def gaps(
    cur: Cursor, site: str, device: str, through: int, limit: int = 64
) -> list[tuple[int, int]]:
    """Missing seq ranges above `through` that a later stored event proves exist.

    A hole right before a chain restart is the device's declared skip, not a gap.
    """
    cur.execute(
        "SELECT seq + 1, nxt - 1 FROM (SELECT seq, lead(seq) OVER w AS nxt,"
        " lead(prev) OVER w AS nxt_prev FROM (SELECT %s::int8 AS seq, NULL::bytea AS prev"
        " UNION ALL SELECT seq, prev FROM events WHERE site = %s AND device = %s AND seq > %s)"
        " AS s WINDOW w AS (ORDER BY seq)) AS g"
        " WHERE nxt > seq + 1 AND nxt_prev <> %s ORDER BY seq LIMIT %s",
        (through, site, device, through, ZERO_PREV, limit),
    )
    return [(int(a), int(b)) for a, b in cur]
