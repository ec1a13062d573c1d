"""What comes down from the central ledger: signed envelopes, opened only with the pinned key.

Everything a device applies from the network is signed by the central key (SPEC "Signed
control plane"): master data is an envelope

    {"v": 1, "kind": K, "version": N, "site": S, "device": D or "*", "issued": RFC3339,
     "body": {...}, "sig": B64}

signed with the events' rule (canonical JSON without `sig`). `open_envelope` checks, before
anything is applied: the size and shape of the JSON (bounded), the signature with the pinned
key, the addressee (this site, this device or every device of the site), and the version range
(1..2^53-1, so no version can freeze later updates). A refusal names its reason; it is never
an exception other than `Refused`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from agent.records.verify import verify_signature
from agent.rules.limits import DEFAULT_LIMITS, JsonLimits, LimitError, is_printable, load_json

#: The largest version a device takes: JSON numbers above it lose precision in many parsers.
MAX_VERSION: Final = 2**53 - 1
#: Every device of the site: the `device` of a site-wide envelope.
EVERY_DEVICE: Final = "*"
_MAX_NAME: Final = 64


class Refused(ValueError):
    """A downlink message that must not be applied; `reason` is a stable word for alerts."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Envelope:
    """A verified envelope: what was signed, for whom, and the body to apply."""

    kind: str
    version: int
    site: str
    device: str
    issued: str
    body: dict[str, Any]


def _version(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_VERSION:
        raise Refused("bad_version", f"version must be an integer 1..{MAX_VERSION}")
    return value


def _name(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not is_printable(value, _MAX_NAME) or not value:
        raise Refused("malformed", f"{key!r} must be a short printable string")
    return value


def _issued(value: object) -> str:
    if not isinstance(value, str) or len(value) > 40:
        raise Refused("malformed", "'issued' must be an RFC 3339 time")
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise Refused("malformed", "'issued' must be an RFC 3339 time") from None
    if when.tzinfo is None:
        raise Refused("malformed", "'issued' must carry its UTC offset")
    return value


def open_signed(payload: bytes, key: Ed25519PublicKey, limits: JsonLimits) -> dict[str, Any]:
    """The JSON object in `payload` if it is within `limits`, signed by `key` (SPEC's rule) and
    of message version 1; `Refused` says why not. Addressing is the caller's to check."""
    try:
        obj = load_json(payload, limits)
    except LimitError as exc:
        raise Refused("malformed", str(exc)) from None
    if not isinstance(obj, dict):
        raise Refused("malformed", "not a JSON object")
    if "sig" not in obj:
        raise Refused("unsigned", "no signature")
    if not isinstance(obj.get("sig"), str) or not verify_signature(obj, key):
        raise Refused("bad_signature", "not signed by the pinned central key")
    if obj.get("v") != 1:
        raise Refused("malformed", "unknown message version")
    return obj


def open_envelope(
    payload: bytes,
    key: Ed25519PublicKey,
    *,
    site: str,
    device: str,
    limits: JsonLimits = DEFAULT_LIMITS,
) -> Envelope:
    """Verify a signed envelope addressed to this device; `Refused` says why not."""
    obj = open_signed(payload, key, limits)
    kind = _name(obj, "kind")
    to_site, to_device = _name(obj, "site"), _name(obj, "device")
    if to_site != site or to_device not in (device, EVERY_DEVICE):
        raise Refused("misaddressed", f"addressed to {to_site}/{to_device}")
    body = obj.get("body")
    if not isinstance(body, dict):
        raise Refused("malformed", "'body' must be an object")
    return Envelope(
        kind, _version(obj.get("version")), to_site, to_device, _issued(obj.get("issued")), body
    )
