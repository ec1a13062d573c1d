"""What arrived: a topic and its bytes become a verified event, a verified device record, or
quarantined evidence with a stable reason. Pure: the enrolled keys come in as a lookup.

Nothing here raises on hostile input. Every check a message can fail has a reason code that
the ledger stores beside the exact bytes and reports:

| reason | what was wrong |
|---|---|
| `too_large` | the payload exceeds `[central] max_payload` (only its first bytes are kept) |
| `not_json` | not UTF-8 JSON, or not a JSON object |
| `malformed` | a required member is missing or of the wrong type (the detail names it) |
| `topic_mismatch` | the body's `site`/`device` differ from the topic it was published on |
| `unknown_topic` | the topic is not `{prefix}/{site}/{device}/{event,reject,alert,report}` |
| `unenrolled_device` | no key is enrolled for the device |
| `bad_signature` | the signature does not verify against the enrolled key |
| `broken_link` | (decided in the ledger) `prev` does not match the stored neighbour |
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, get_args

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from agent.codes.model import Kind, pack_identity
from agent.records.envelope import ZERO_HASH
from agent.records.verify import verified_bytes
from agent.rules.operations import OPERATIONS

#: Topic kinds the ledger consumes: the chained events and the devices' signed side records.
EVENT: Final = "event"
RECORD_KINDS: Final = ("reject", "alert", "report")
KINDS: Final = (EVENT, *RECORD_KINDS)
NAME: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
_HEX64: Final = re.compile(r"[0-9a-f]{64}")
MAX_SEQ: Final = (1 << 63) - 1  # PostgreSQL bigint
ZERO_PREV: Final = bytes.fromhex(ZERO_HASH)
#: How much of an oversized payload is kept as evidence.
KEPT_OF_TOO_LARGE: Final = 4096

KeyLookup = Callable[[str, str], Ed25519PublicKey | None]


@dataclass(frozen=True, slots=True)
class Arrival:
    """One MQTT message as the consumer received it; `mid`, `generation` (which connection it
    came on) and `qos` are what its PUBACK needs."""

    topic: str
    payload: bytes
    mid: int = 0
    generation: int = 0
    qos: int = 1


@dataclass(frozen=True, slots=True)
class VerifiedEvent:
    """An event whose signature holds against its device's enrolled key."""

    site: str
    device: str
    seq: int
    prev: bytes  # 32 bytes; all zero at a chain start
    hash: bytes  # SHA-256 of the signed bytes: what the next event's `prev` must be
    payload: bytes  # exactly as published
    op: str
    code: str
    level: str
    ts: dt.datetime
    void_of: int | None  # an undo: the seq whose scan this event voids
    #: the physical pack, however its code was spelled (a GS1 pack: GTIN + serial)
    pack: str = ""

    @property
    def key(self) -> tuple[str, str, int]:
        """(site, device, seq): unique in the ledger."""
        return (self.site, self.device, self.seq)

    @property
    def starts_chain(self) -> bool:
        """`prev` is 64 zeros: seq 1, or a device that restarted its chain (it says so)."""
        return self.prev == ZERO_PREV


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    """A verified reject, alert or reconciliation report (signed, outside the chain)."""

    site: str
    device: str
    kind: str
    payload: bytes
    digest: bytes
    reason: str | None  # a reject's reason code
    ts: dt.datetime


@dataclass(frozen=True, slots=True)
class Quarantined:
    """A message kept apart, with what is known of where it came from."""

    reason: str
    detail: str
    topic: str
    payload: bytes  # as received (the first bytes only when too large)
    digest: bytes  # SHA-256 of the whole payload: evidence is stored once per digest
    site: str | None = None
    device: str | None = None
    seq: int | None = None


Classified = VerifiedEvent | DeviceRecord | Quarantined


def _quarantine(
    reason: str,
    detail: str,
    arrival: Arrival,
    *,
    site: str | None = None,
    device: str | None = None,
    seq: int | None = None,
) -> Quarantined:
    payload = arrival.payload
    digest = hashlib.sha256(payload).digest()
    if reason == "too_large":
        payload = payload[:KEPT_OF_TOO_LARGE]
    return Quarantined(reason, detail, arrival.topic, payload, digest, site, device, seq)


def split_topic(prefix: str, topic: str) -> tuple[str, str, str] | None:
    """(site, device, kind) of `{prefix}/{site}/{device}/{kind}`, or None."""
    head = prefix.rstrip("/") + "/"
    if not topic.startswith(head):
        return None
    parts = topic[len(head) :].split("/")
    if len(parts) != 3 or parts[2] not in KINDS:
        return None
    site, device, kind = parts
    if not (NAME.fullmatch(site) and NAME.fullmatch(device)):
        return None
    return site, device, kind


def _timestamp(value: object) -> dt.datetime | None:
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        ts = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return ts if ts.tzinfo is not None else None


def _storable(value: object, longest: int) -> bool:
    """A string PostgreSQL `text` can hold (no NUL) and short enough to index."""
    return isinstance(value, str) and len(value) <= longest and "\x00" not in value


def _missing(obj: dict[str, Any], kind: str) -> str | None:
    """The first member of an event or record that is absent or of the wrong type."""
    if obj.get("v") != 1 or isinstance(obj.get("v"), bool):
        return "v must be 1"
    for name in ("id", "site", "device", "sig"):
        if not isinstance(obj.get(name), str):
            return f"{name} must be a string"
    if _timestamp(obj.get("ts")) is None:
        return "ts must be an RFC 3339 time with a UTC offset"
    if kind != EVENT:
        reason = obj.get("reason")
        if reason is not None and not _storable(reason, 64):
            return "reason must be a short string"
        return None
    seq = obj.get("seq")
    if isinstance(seq, bool) or not isinstance(seq, int) or not 1 <= seq <= MAX_SEQ:
        return f"seq must be an integer 1..{MAX_SEQ}"
    prev = obj.get("prev")
    if not isinstance(prev, str) or not _HEX64.fullmatch(prev):
        return "prev must be 64 lowercase hex digits"
    if obj.get("op") not in OPERATIONS:
        return "op must be one of the operations of SPEC.md"
    for name in ("code", "kind", "level"):
        if not _storable(obj.get(name), 512):
            return f"{name} must be a string of at most 512 characters without NUL"
    if not isinstance(obj.get("fields"), dict):
        return "fields must be an object"
    return None


def classify(prefix: str, arrival: Arrival, keys: KeyLookup, max_payload: int) -> Classified:
    """Parse, check and verify one message; never raises on what a network can deliver."""
    where = split_topic(prefix, arrival.topic)
    if where is None:
        return _quarantine("unknown_topic", "not {prefix}/{site}/{device}/{kind}", arrival)
    site, device, kind = where
    if len(arrival.payload) > max_payload:
        return _quarantine(
            "too_large",
            f"{len(arrival.payload)} bytes > {max_payload}",
            arrival,
            site=site,
            device=device,
        )
    try:
        obj = json.loads(arrival.payload)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        return _quarantine("not_json", str(exc)[:200], arrival, site=site, device=device)
    if not isinstance(obj, dict):
        return _quarantine("not_json", "not a JSON object", arrival, site=site, device=device)
    seq = obj.get("seq") if kind == EVENT else None
    seq = seq if isinstance(seq, int) and not isinstance(seq, bool) and 0 < seq <= MAX_SEQ else None
    problem = _missing(obj, kind)
    if problem is not None:
        return _quarantine("malformed", problem, arrival, site=site, device=device, seq=seq)
    if obj["site"] != site or obj["device"] != device:
        detail = f"body says {obj['site']}/{obj['device']}"
        return _quarantine(
            "topic_mismatch", detail[:200], arrival, site=site, device=device, seq=seq
        )
    key = keys(site, device)
    if key is None:
        return _quarantine(
            "unenrolled_device", f"{site}/{device}", arrival, site=site, device=device, seq=seq
        )
    signed = verified_bytes(obj, key)
    if signed is None:
        return _quarantine(
            "bad_signature",
            "not signed by the enrolled key",
            arrival,
            site=site,
            device=device,
            seq=seq,
        )
    ts = _timestamp(obj["ts"])
    assert ts is not None  # checked by _missing
    if kind != EVENT:
        reason = obj.get("reason")
        return DeviceRecord(
            site,
            device,
            kind,
            arrival.payload,
            hashlib.sha256(arrival.payload).digest(),
            reason if isinstance(reason, str) else None,
            ts,
        )
    void_of = obj["fields"].get("void_of")
    return VerifiedEvent(
        site=site,
        device=device,
        seq=obj["seq"],
        prev=bytes.fromhex(obj["prev"]),
        hash=hashlib.sha256(signed).digest(),
        payload=arrival.payload,
        op=obj["op"],
        code=obj["code"],
        level=obj["level"],
        ts=ts,
        void_of=void_of if isinstance(void_of, int) and not isinstance(void_of, bool) else None,
        pack=_pack(obj),
    )


def _pack(obj: dict[str, Any]) -> str:
    """The pack an event is about: the device's own rule (`pack_identity`), so one GS1 pack
    sold once as its DataMatrix and once as its Digital Link QR is one pack here too."""
    fields = {k: v for k, v in obj["fields"].items() if isinstance(v, str | bool | int)}
    kind = obj["kind"]
    return pack_identity(kind if kind in get_args(Kind) else "unknown", obj["code"], fields)
