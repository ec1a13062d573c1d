"""The device's end of the central ledger's acknowledgements.

With `[central] public_key` set, "uploaded" (the broker's PUBACK) is not the end of an event's
way: it stays in the outbox until the ledger acknowledges it. The ledger publishes, signed by
its key, on the device's `cmd/` topics:

- `cmd/ack` (retained) `{"v": 1, "site", "device", "through": N, "ts", "sig"}`: every event
  with seq <= N is stored centrally;
- `cmd/resend` `{"v": 1, "site", "device", "ranges": [[a, b], ...], "ts", "sig"}`: these
  numbers are missing there.

`open_command` admits only messages signed by the pinned key and addressed to this device;
`Redelivery` keeps what the broker took and central has not acknowledged, and says when to
publish it again (byte-identical: it is read from the store again) — at once when central asks
for it, and after `ack_timeout`, then at doubling intervals:

- all of it, when central has shown it is alive since (its `through` moved): it has stopped
  short of these events, so the broker lost them;
- otherwise only the lowest one, a probe: central may simply be down, with the broker queueing
  every event for it, and publishing the whole backlog again would only fill that queue (and
  with a bounded queue, push out what it holds). The probe is the event right after central's
  `through`, so a running ledger that lacked it moves `through` on storing it, and the rest
  follows one timeout later;
- never while central's `through` keeps moving: it is still working through its queue.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from agent.records.downlink import MAX_VERSION, Refused, open_signed
from agent.rules.limits import JsonLimits
from agent.store.acks import AckRuns, Run, runs_of

#: A command is small: anything bigger is refused before it is parsed.
_COMMAND_LIMITS: Final = JsonLimits(max_bytes=64 * 1024, max_depth=4, max_items=2048)
#: Ranges one resend request may ask for, and numbers it may cover in all (the ledger sends at
#: most 64 ranges; a request for more is answered in part, the rest is asked for again).
MAX_RANGES: Final = 256
MAX_RESEND: Final = 100_000
#: Re-publishing backs off up to this many times the ack timeout.
_MAX_BACKOFF: Final = 64


@dataclass(frozen=True, slots=True)
class Ack:
    """Central holds every event numbered up to `through`."""

    through: int


@dataclass(frozen=True, slots=True)
class Resend:
    """Central lacks these numbers (inclusive ranges)."""

    ranges: tuple[tuple[int, int], ...]


def _number(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_VERSION:
        raise Refused("malformed", "numbers must be integers 0..2^53-1")
    return value


def open_command(
    kind: str, payload: bytes, key: Ed25519PublicKey, *, site: str, device: str
) -> Ack | Resend:
    """The acknowledgement or resend request in `payload`; `Refused` unless it is signed by the
    pinned central key, addressed to this device, and well formed."""
    obj = open_signed(payload, key, _COMMAND_LIMITS)
    if obj.get("site") != site or obj.get("device") != device:
        raise Refused("misaddressed", "for another device")
    if kind == "ack":
        return Ack(_number(obj.get("through")))
    ranges = obj.get("ranges")
    if not isinstance(ranges, list) or not 0 < len(ranges) <= MAX_RANGES:
        raise Refused("malformed", f"'ranges' must hold 1..{MAX_RANGES} ranges")
    out: list[tuple[int, int]] = []
    for item in ranges:
        if not isinstance(item, list) or len(item) != 2:
            raise Refused("malformed", "each range must be [first, last]")
        first, last = _number(item[0]), _number(item[1])
        if not 1 <= first <= last:
            raise Refused("malformed", "a range must be 1 <= first <= last")
        out.append((first, last))
    return Resend(tuple(out))


@dataclass(slots=True)
class _Pending:
    """Rows the broker took, central has not acknowledged, and when to publish them again."""

    lo: int
    hi: int
    due: float
    since: float  # when these rows were last published (or passed over for a probe)
    tries: int = 0


class Redelivery:
    """What waits for central's acknowledgement, and the rows to publish again now.

    Kept as runs of row ids (not a row each), so a day's backlog published while the ledger
    was down costs a few entries. Used only from the uplink thread.
    """

    def __init__(self, ack_timeout: float) -> None:
        self.ack_timeout = ack_timeout
        self._pending: list[_Pending] = []
        self.queue: collections.deque[tuple[int, int]] = collections.deque()  # rid ranges
        self.republished = 0  # rows queued again so far (tests, diagnostics)
        self.last_progress: float | None = None  # when central's `through` last moved

    def start(self, awaiting: Iterable[Run], now: float) -> None:
        """A new connection: what earlier ones published waits one more ack timeout — as the
        store has it, and what the broker took that the store has not recorded yet."""
        self.queue.clear()
        spans = sorted([(r.lo, r.hi) for r in awaiting] + [(p.lo, p.hi) for p in self._pending])
        merged: list[list[int]] = []
        for lo, hi in spans:
            if merged and lo <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], hi)
            else:
                merged.append([lo, hi])
        due = now + self.ack_timeout
        self._pending = [_Pending(lo, hi, due, now) for lo, hi in merged]

    def published(self, rids: Iterable[int], now: float) -> None:
        """The broker took these events: central's ack is due within the timeout."""
        due = now + self.ack_timeout
        self._pending += (_Pending(lo, hi, due, now) for lo, hi in runs_of(rids))

    def progressed(self, now: float) -> None:
        """Central's `through` moved: it is alive and working; give it a timeout more."""
        self.last_progress = now
        floor = now + self.ack_timeout
        for p in self._pending:
            p.due = max(p.due, floor)

    def ask(self, rids: list[int]) -> None:
        """Central asked for these rows: publish them again at once."""
        self.queue.extend(runs_of(rids))
        self.republished += len(rids)

    def tick(self, done: AckRuns, now: float) -> None:
        """Forget what central has acknowledged; queue what is overdue, backing off."""
        kept: list[_Pending] = []
        for p in self._pending:
            for lo, hi in done.gaps(p.lo - 1, p.hi):  # the part still unacknowledged
                kept.append(_Pending(lo, hi, p.due, p.since, p.tries))
        probe: _Pending | None = None
        for p in kept:
            if p.due > now:
                continue
            if self.last_progress is not None and self.last_progress >= p.since:
                self.queue.append((p.lo, p.hi))  # central is alive and lacks them
                self.republished += p.hi - p.lo + 1
            elif probe is None or p.lo < probe.lo:
                probe = p
            p.tries += 1
            p.since = now
            p.due = now + self.ack_timeout * min(_MAX_BACKOFF, 2**p.tries)
        if probe is not None:
            self.queue.append((probe.lo, probe.lo))
            self.republished += 1
        self._pending = kept

    @property
    def waiting(self) -> int:
        """Rows the broker took that central has not acknowledged (as this uplink knows)."""
        return sum(p.hi - p.lo + 1 for p in self._pending)
