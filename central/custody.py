"""Custody across devices: a unit dispensed or sold at two devices with no `customer_return`
between is a 回流 (returned-to-market) signal, raised the moment the second event is stored.

Events of different devices arrive in any order (backlogs, round-robin consumers), so "between"
is judged by the scan times the events carry, not by arrival: when a sale is stored, its
neighbours in time among that code's sales and customer returns are looked at, on both sides.
A sale at the *same* device again is the device's own rule (it refuses `already_recorded`, or
allows the parts of a split pack), so only a neighbour at another device raises the alert.
An undo (`fields.void_of`) takes the voided sale out of the comparison; an alert raised before
the undo or a late-arriving return stays in the record. Custody is kept per *pack* (the
`custody.code` column holds `VerifiedEvent.pack`, the device's `pack_identity`): a GS1 pack is
its GTIN and serial however the code was spelled.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from agent.rules.operations import DISPENSING
from central.intake import VerifiedEvent

if TYPE_CHECKING:
    import psycopg

#: The dispensing operations (one definition: agent/rules/operations.py).
SALES: Final = sorted(DISPENSING)
RETURN: Final = "customer_return"
RELEVANT: Final = frozenset({*SALES, RETURN})
ALERT_KIND: Final = "returned_to_market"

#: A new sale's nearest custody event of its code before (first half) and after it in scan
#: time, not itself, not voided nor a void; kept when it is a sale at another device.
_NEIGHBOURS: Final = """
SELECT n.i, p.op, p.site, p.device, p.seq
FROM unnest(%b::text[], %b::timestamptz[], %b::text[], %b::text[], %b::int8[])
    WITH ORDINALITY AS n(code, ts, site, device, seq, i)
CROSS JOIN LATERAL (
    SELECT c.op, c.site, c.device, c.seq FROM custody c
    WHERE c.code = n.code AND (c.site, c.device, c.seq) <> (n.site, n.device, n.seq)
      AND c.void_of IS NULL AND c.ts <= n.ts
      AND NOT EXISTS (SELECT 1 FROM custody v
                      WHERE v.site = c.site AND v.device = c.device AND v.void_of = c.seq)
    ORDER BY c.ts DESC, c.seq DESC LIMIT 1) AS p
WHERE p.op = ANY(%s) AND (p.site, p.device) <> (n.site, n.device)
UNION ALL
SELECT n.i, p.op, p.site, p.device, p.seq
FROM unnest(%b::text[], %b::timestamptz[], %b::text[], %b::text[], %b::int8[])
    WITH ORDINALITY AS n(code, ts, site, device, seq, i)
CROSS JOIN LATERAL (
    SELECT c.op, c.site, c.device, c.seq FROM custody c
    WHERE c.code = n.code AND (c.site, c.device, c.seq) <> (n.site, n.device, n.seq)
      AND c.void_of IS NULL AND c.ts >= n.ts
      AND NOT EXISTS (SELECT 1 FROM custody v
                      WHERE v.site = c.site AND v.device = c.device AND v.void_of = c.seq)
    ORDER BY c.ts, c.seq LIMIT 1) AS p
WHERE p.op = ANY(%s) AND (p.site, p.device) <> (n.site, n.device)
"""


@dataclass(frozen=True, slots=True)
class Custodian:
    """Where and how a unit was last handed over."""

    op: str
    site: str
    device: str
    seq: int


def record(
    cur: psycopg.Cursor[tuple[Any, ...]], events: Sequence[VerifiedEvent]
) -> Iterator[tuple[str, VerifiedEvent, Custodian]]:
    """Add the batch's custody events and yield a 回流 alert for each sale that needs one.

    The caller holds the devices' locks; here each code's lock is taken too (sorted), so two
    consumers storing two sales of one code at once see each other's.
    """
    from central.ledger import LOCK_CODE, lock_all  # noqa: PLC0415 - ledger imports custody

    relevant = [e for e in events if e.op in RELEVANT]
    if not relevant:
        return
    lock_all(cur, LOCK_CODE, [e.pack for e in relevant])
    cur.execute(
        "INSERT INTO custody (code, ts, op, site, device, seq, void_of)"
        " SELECT * FROM unnest(%b::text[], %b::timestamptz[], %b::text[], %b::text[],"
        " %b::text[], %b::int8[], %b::int8[]) ON CONFLICT DO NOTHING",
        (
            [e.pack for e in relevant],
            [e.ts for e in relevant],
            [e.op for e in relevant],
            [e.site for e in relevant],
            [e.device for e in relevant],
            [e.seq for e in relevant],
            [e.void_of for e in relevant],
        ),
    )
    sales = [e for e in relevant if e.op in SALES and e.void_of is None]
    if not sales:
        return
    # For each new sale, its nearest live custody event of the same code before and after it
    # in scan time; a sale there at another device is the alert.
    cur.execute(_NEIGHBOURS, (*_columns(sales), SALES, *_columns(sales), SALES))
    seen: set[frozenset[tuple[str, str, int]]] = set()
    for i, op, site, device, seq in cur.fetchall():
        sale = sales[int(i) - 1]
        pair = frozenset({sale.key, (site, device, int(seq))})
        if pair not in seen:  # two new sales of one batch find each other: one alert
            seen.add(pair)
            yield ALERT_KIND, sale, Custodian(op, site, device, int(seq))


def _columns(sales: Sequence[VerifiedEvent]) -> tuple[list[Any], ...]:
    return (
        [e.pack for e in sales],
        [e.ts for e in sales],
        [e.site for e in sales],
        [e.device for e in sales],
        [e.seq for e in sales],
    )
