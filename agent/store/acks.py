"""Which outbox rows are done (acknowledged, or quarantined) or published, and since when.

Two tables of the same shape: `acked` (done: the broker's PUBACK, or with a central ledger
central's acknowledgement, or quarantined) and `published` (with a central ledger: the broker
took the row, central has not acknowledged it yet).

Outbox rows are written once and never updated. Being sent is recorded apart from them, as
runs of consecutive row ids appended to the small `acked` table, one run per stretch of ids an
acknowledgement batch covered. Marking twenty rows sent then writes one page (the table's
rightmost leaf) instead of rewriting twenty row pages and a partial index, which is most of
what a PUBACK used to cost in bytes written (bench/RESULTS.md).

Both the writer (`Store`) and the uplink's reader keep the runs in memory; `acked.n` only grows
(a merged run is inserted before the runs it replaces are deleted), so a reader catches up by
reading the rows above the last `n` it saw.
"""

from __future__ import annotations

import bisect
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class Run:
    """Row ids `lo`..`hi` (inclusive), done at `at` (epoch seconds)."""

    lo: int
    hi: int
    at: float


def runs_of(rids: Iterable[int]) -> list[tuple[int, int]]:
    """Consecutive stretches of a set of row ids, ascending."""
    out: list[tuple[int, int]] = []
    for rid in sorted(set(rids)):
        if out and out[-1][1] == rid - 1:
            out[-1] = (out[-1][0], rid)
        else:
            out.append((rid, rid))
    return out


#: The tables runs are kept in.
DONE: Final = "acked"
PUBLISHED: Final = "published"


class AckRuns:
    """Disjoint runs sorted by `lo`, with the lookups the outbox needs."""

    def __init__(self, table: str = DONE) -> None:
        self.table = table
        self._los: list[int] = []
        self._runs: list[Run] = []
        self.last_n = 0  # the highest `n` of the table folded in

    def __len__(self) -> int:
        return len(self._runs)

    def __iter__(self) -> Iterator[Run]:
        return iter(self._runs)

    def add(self, run: Run) -> None:
        """Fold in a run; runs it overlaps (a merged run replacing older ones) are absorbed."""
        i = bisect.bisect_right(self._los, run.lo)
        if i and self._runs[i - 1].hi >= run.lo:
            i -= 1
        j = i
        lo, hi = run.lo, run.hi
        while j < len(self._runs) and self._runs[j].lo <= run.hi:
            lo, hi = min(lo, self._runs[j].lo), max(hi, self._runs[j].hi)
            j += 1
        merged = run if (lo, hi) == (run.lo, run.hi) else Run(lo, hi, run.at)
        self._runs[i:j] = [merged]
        self._los[i:j] = [lo]

    def find(self, rid: int) -> Run | None:
        """The run covering `rid`, if it is done."""
        i = bisect.bisect_right(self._los, rid) - 1
        if i >= 0 and self._runs[i].hi >= rid:
            return self._runs[i]
        return None

    def gaps(self, after: int, upto: int) -> Iterator[tuple[int, int]]:
        """Stretches of ids in (`after`, `upto`] that no run covers, ascending."""
        cur = after + 1
        i = max(0, bisect.bisect_right(self._los, cur) - 1)
        while cur <= upto:
            while i < len(self._runs) and self._runs[i].hi < cur:
                i += 1
            if i < len(self._runs) and self._runs[i].lo <= cur:
                cur = self._runs[i].hi + 1
                continue
            end = upto if i == len(self._runs) else min(upto, self._runs[i].lo - 1)
            yield cur, end
            cur = end + 1

    def new_runs(self, rids: Sequence[int], at: float) -> list[Run]:
        """Runs for the ids in `rids` not already done (acknowledgements can repeat)."""
        return [Run(lo, hi, at) for lo, hi in runs_of(r for r in rids if self.find(r) is None)]

    def refresh(self, conn: sqlite3.Connection) -> None:
        """Fold in the runs appended since the last call."""
        rows = conn.execute(
            f"SELECT n, lo, hi, at FROM {self.table} WHERE n > ? ORDER BY n",  # noqa: S608 - our table names
            (self.last_n,),
        ).fetchall()
        for n, lo, hi, at in rows:
            self.add(Run(lo, hi, at))
            self.last_n = n


def load(conn: sqlite3.Connection, table: str = DONE) -> AckRuns:
    """Every run of a table in the store."""
    runs = AckRuns(table)
    runs.refresh(conn)
    return runs


def record(conn: sqlite3.Connection, new: Sequence[Run], table: str = DONE) -> int:
    """Append runs inside the caller's transaction; returns the last `n` (0 if none).

    Fold them into the in-memory runs only once the transaction has committed."""
    n = 0
    for run in new:
        cur = conn.execute(
            f"INSERT INTO {table} (lo, hi, at) VALUES (?, ?, ?)",  # noqa: S608 - our table names
            (run.lo, run.hi, run.at),
        )
        n = cur.lastrowid or n
    return n


def compact(conn: sqlite3.Connection, runs: AckRuns, before: float) -> int:
    """Merge touching runs all done before `before` into one, inside the caller's transaction;
    returns how many runs went. Reload the runs after it commits.

    Their rows have been pruned, so their separate times no longer matter; this keeps the
    table (and every reader's copy) small however long the device runs.
    """
    groups: list[list[Run]] = []
    for run in runs:
        if run.at >= before:
            continue
        if groups and groups[-1][-1].hi + 1 == run.lo:
            groups[-1].append(run)
        else:
            groups.append([run])
    gone = 0
    for group in groups:
        if len(group) < 2:
            continue
        merged = Run(group[0].lo, group[-1].hi, max(r.at for r in group))
        # Insert first: `n` then only grows, which is how readers catch up.
        n = record(conn, [merged], runs.table)
        gone += conn.execute(
            f"DELETE FROM {runs.table} WHERE lo >= ? AND hi <= ? AND n < ?",  # noqa: S608 - our table names
            (merged.lo, merged.hi, n),
        ).rowcount
    return gone
