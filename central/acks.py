"""What goes down to a device about its stream: the signed, retained `cmd/ack` and the signed
`cmd/resend` for gaps. The database decides what is sent, so any number of consumers agree.

**Acks never move backwards.** A consumer publishes a device's ack holding that device's
downlink lock (`LOCK_DOWNLINK`, transaction-scoped), with the `through` it reads under that
lock (the latest committed), and releases the lock only after the broker's PUBACK. So acks for
one device reach the broker one at a time, each at least as high as the one before, whichever
consumer sends them; the retained message is always the newest. `downlink.acked_through` records
what the broker has; a consumer that fails to publish leaves it behind and the sweep retries.

**Resend.** A gap (a missing seq below one that arrived) that stays open `resend_after`
seconds while `through` does not move gets a signed `cmd/resend` with its ranges, and again
every `resend_every` seconds while it stays open. The sweep that sends them runs in every
consumer and claims devices with `FOR UPDATE SKIP LOCKED`, so a device is asked once per
period, not once per consumer.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.records.envelope import rfc3339
from agent.records.signing import sign_reject
from central import ledger

log = logging.getLogger(__name__)

#: seconds a consumer waits for the broker to take an ack (short: SIGTERM must end in 5 s)
PUBACK_WAIT: Final = 2.0
REPUBLISH_AFTER: Final = 1.0  # an unchanged ack is sent again at most this often per device
MAX_RANGES: Final = 64  # ranges in one resend request (the rest follow once these are filled)
SWEEP_LIMIT: Final = 100  # devices per sweep transaction


class Delivery(Protocol):
    """What publishing returns: paho's `MessageInfo` has this shape."""

    def wait_for_publish(self, timeout: float | None = None) -> None:
        """Block until the broker acknowledged, or the timeout passed."""

    def is_published(self) -> bool:
        """True once the broker acknowledged."""


#: publish(topic, payload, retain) at QoS 1
Publish = Callable[[str, bytes, bool], Delivery]


def ack_payload(key: Ed25519PrivateKey, site: str, device: str, through: int, now: float) -> bytes:
    """`{"v":1,"site","device","through","ts","sig"}` signed by the central key (SPEC's rule)."""
    body = {"v": 1, "site": site, "device": device, "through": through, "ts": rfc3339(now)}
    return sign_reject(body, key)


def resend_payload(
    key: Ed25519PrivateKey, site: str, device: str, ranges: Sequence[tuple[int, int]], now: float
) -> bytes:
    """`{"v":1,"site","device","ranges":[[a,b],…],"ts","sig"}` signed by the central key."""
    body = {
        "v": 1,
        "site": site,
        "device": device,
        "ranges": [[a, b] for a, b in ranges],
        "ts": rfc3339(now),
    }
    return sign_reject(body, key)


@dataclass(frozen=True, slots=True)
class DeviceTopics:
    """A device's command topics under the prefix."""

    prefix: str

    def ack(self, site: str, device: str) -> str:
        """Retained: how far the device's stream is stored centrally."""
        return f"{self.prefix.rstrip('/')}/{site}/{device}/cmd/ack"

    def resend(self, site: str, device: str) -> str:
        """Which seq ranges central asks the device to publish again."""
        return f"{self.prefix.rstrip('/')}/{site}/{device}/cmd/resend"


class Downlink:
    """Signs and publishes acks and resend requests as the ledger's state says."""

    def __init__(
        self,
        conn: ledger.Connection,
        key: Ed25519PrivateKey,
        prefix: str,
        publish: Publish,
        *,
        resend_after: float,
        resend_every: float,
    ) -> None:
        self.conn = conn
        self.key = key
        self.topics = DeviceTopics(prefix)
        self.publish = publish
        self.resend_after = resend_after
        self.resend_every = resend_every
        self.acks_sent = 0
        self.resends_sent = 0

    def acknowledge(
        self, devices: Collection[tuple[str, str]], again: Collection[tuple[str, str]] = ()
    ) -> int:
        """Publish the ack of each device whose `through` is ahead of its last ack (and of the
        `again` devices, which re-sent confirmed events, even when unchanged). Returns how many
        were sent; those the broker did not take in time stay due for the sweep."""
        if not devices and not again:
            return 0
        wanted = sorted(set(devices) | set(again))
        sent = 0
        with self.conn.transaction(), self.conn.cursor() as cur:
            ledger.lock_all(cur, ledger.LOCK_DOWNLINK, [f"{s}/{d}" for s, d in wanted])
            sites, names = zip(*wanted, strict=True)
            cur.execute(
                "SELECT p.site, p.device, p.through, d.acked_through,"
                " d.ack_at IS NULL OR d.ack_at < now() - make_interval(secs => %s)"
                " FROM progress p JOIN downlink d ON d.site = p.site AND d.device = p.device"
                " JOIN unnest(%b::text[], %b::text[]) AS t(s, d) ON p.site = t.s AND p.device = t.d",
                (REPUBLISH_AFTER, list(sites), list(names)),
            )
            due: list[tuple[str, str, int, Delivery]] = []
            now = time.time()
            for site, device, through, acked, quiet in cur.fetchall():
                if through <= 0:
                    continue
                if through > acked or ((site, device) in again and quiet):
                    payload = ack_payload(self.key, site, device, through, now)
                    due.append(
                        (
                            site,
                            device,
                            through,
                            self.publish(self.topics.ack(site, device), payload, True),
                        )
                    )
            done = self._confirmed(due)
            if done:
                cur.execute(
                    "UPDATE downlink d SET acked_through = GREATEST(d.acked_through, t.n),"
                    " ack_at = now() FROM unnest(%b::text[], %b::text[], %b::int8[]) AS t(s, d, n)"
                    " WHERE d.site = t.s AND d.device = t.d",
                    ([s for s, _, _ in done], [d for _, d, _ in done], [n for _, _, n in done]),
                )
                sent = len(done)
        self.acks_sent += sent
        return sent

    @staticmethod
    def _confirmed(
        due: Sequence[tuple[str, str, int, Delivery]],
    ) -> list[tuple[str, str, int]]:
        deadline = time.monotonic() + PUBACK_WAIT
        done = []
        for site, device, n, delivery in due:
            if _published(delivery, max(0.0, deadline - time.monotonic())):
                done.append((site, device, n))
        return done

    def sweep(self) -> None:
        """Re-publish acks that are behind, and ask for gaps that stayed open."""
        with self.conn.transaction():
            rows = self.conn.execute(
                "SELECT p.site, p.device FROM progress p JOIN downlink d"
                " ON d.site = p.site AND d.device = p.device"
                " WHERE p.through > d.acked_through LIMIT %s",
                (SWEEP_LIMIT,),
            ).fetchall()
        if rows:
            self.acknowledge([(r[0], r[1]) for r in rows])
        with self.conn.transaction(), self.conn.cursor() as cur:
            cur.execute(
                "SELECT p.site, p.device, p.through FROM progress p JOIN downlink d"
                " ON d.site = p.site AND d.device = p.device"
                " WHERE p.gap_since < now() - make_interval(secs => %s)"
                " AND (d.resend_at IS NULL OR d.resend_at < now() - make_interval(secs => %s))"
                " ORDER BY p.gap_since LIMIT %s FOR UPDATE OF d SKIP LOCKED",
                (self.resend_after, self.resend_every, SWEEP_LIMIT),
            )
            due: list[tuple[str, str, int, Delivery]] = []
            asked: list[tuple[str, str, str]] = []
            now = time.time()
            for site, device, through in cur.fetchall():
                ranges = ledger.gaps(cur, site, device, through, MAX_RANGES)
                if not ranges:
                    continue
                payload = resend_payload(self.key, site, device, ranges, now)
                due.append(
                    (
                        site,
                        device,
                        0,
                        self.publish(self.topics.resend(site, device), payload, False),
                    )
                )
                asked.append((site, device, json.dumps(ranges)))
                log.info("ledger: asked %s/%s to resend %s", site, device, _spans(ranges))
            done = {(s, d) for s, d, _ in self._confirmed(due)}
            sent = [a for a in asked if (a[0], a[1]) in done]
            if sent:
                cur.execute(
                    "UPDATE downlink d SET resend_at = now(), resends = d.resends + 1,"
                    " ranges = t.r FROM unnest(%b::text[], %b::text[], %b::text[]) AS t(s, d, r)"
                    " WHERE d.site = t.s AND d.device = t.d",
                    ([s for s, _, _ in sent], [d for _, d, _ in sent], [r for _, _, r in sent]),
                )
            self.resends_sent += len(sent)


def _published(delivery: Delivery, timeout: float) -> bool:
    """True once the broker took it. paho raises RuntimeError from both calls while it is not
    connected: the message is then not (yet) sent; paho re-sends it on reconnect, and what
    the database still shows as due is published again by the sweep."""
    try:
        delivery.wait_for_publish(timeout)
        return delivery.is_published()
    except (RuntimeError, ValueError):
        return False


def _spans(ranges: Sequence[tuple[int, int]]) -> str:
    shown = ", ".join(f"{a}..{b}" if a != b else str(a) for a, b in ranges[:5])
    return shown + (f" and {len(ranges) - 5} more" if len(ranges) > 5 else "")
