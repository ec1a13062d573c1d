"""Signed master data (SPEC "Signed control plane"): the envelope, its checks, its version.

`{"v":1,"kind","version","site","device": D or "*","issued","body","sig"}`, signed by the
central key with the events' rule, published retained at QoS 1 on the device's master topic
(`{prefix}/{site}/{device}/master/{kind}`) or the site's (`{prefix}/{site}/master/{kind}`,
device `*`); a manifest's topic ends with its document: `…/master/manifest/{doc}`.
`version` is one more than the last one recorded for (site, device, kind[, doc]) in the
ledger, reserved in the same transaction that records the publication, so it only ever grows.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.records.envelope import rfc3339
from agent.records.signing import sign_reject
from central import ledger
from central.intake import NAME

KINDS: Final = ("catalog", "relations", "blocklist", "manifest")
MAX_BYTES: Final = 4 * 1024 * 1024  # what a device accepts (SPEC: default 4 MiB)
MAX_DEPTH: Final = 32
MAX_VERSION: Final = (1 << 53) - 1
SITE_WIDE: Final = "*"


class MasterDataError(Exception):
    """The master-data file or its address cannot be published; the message says why."""


@dataclass(frozen=True, slots=True)
class Publication:
    """A signed envelope and where it goes."""

    topic: str
    payload: bytes
    version: int


def _check(value: object, where: str, depth: int = 0) -> None:
    """Refuse what a device would refuse: too deep, or a string that is not printable."""
    if depth > MAX_DEPTH:
        raise MasterDataError(f"{where}: nested deeper than {MAX_DEPTH}")
    if isinstance(value, str):
        if not value.isprintable():
            raise MasterDataError(f"{where}: {value[:40]!r} is not printable text")
    elif isinstance(value, dict):
        for k, v in value.items():
            _check(k, where, depth + 1)
            _check(v, f"{where}.{k}", depth + 1)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check(v, f"{where}[{i}]", depth + 1)


def read_body(path: Path, kind: str, doc: str | None) -> dict[str, Any]:
    """The set to publish: a JSON object as the unsigned payload was, without `version`."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise MasterDataError(f"--file {path}: cannot read ({exc.strerror})") from exc
    if len(raw) > MAX_BYTES:
        raise MasterDataError(f"--file {path}: {len(raw)} bytes; devices accept {MAX_BYTES}")
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise MasterDataError(f"--file {path}: not UTF-8 JSON ({exc})") from exc
    if not isinstance(body, dict):
        raise MasterDataError(f"--file {path}: must be a JSON object")
    if "version" in body:
        raise MasterDataError(
            f"--file {path}: remove `version`; the ledger numbers master data itself"
        )
    if kind == "manifest":
        if doc is None:
            raise MasterDataError("--doc: a manifest needs its document id")
        if body.setdefault("doc", doc) != doc:
            raise MasterDataError(f"--doc {doc!r} differs from the file's doc {body['doc']!r}")
    elif doc is not None:
        raise MasterDataError(f"--doc: only a manifest has a document, not a {kind}")
    _check(body, "body")
    return body


def topic(prefix: str, kind: str, site: str, device: str, doc: str | None) -> str:
    """The retained topic of one kind of master data for a device, or site-wide."""
    base = f"{prefix.rstrip('/')}/{site}"
    if device != SITE_WIDE:
        base += f"/{device}"
    return f"{base}/master/{kind}" + (f"/{doc}" if kind == "manifest" else "")


def envelope(
    key: Ed25519PrivateKey,
    kind: str,
    version: int,
    *,
    site: str,
    device: str,
    body: dict[str, Any],
    now: float,
) -> bytes:
    """The signed envelope's bytes."""
    return sign_reject(
        {
            "v": 1,
            "kind": kind,
            "version": version,
            "site": site,
            "device": device,
            "issued": rfc3339(now),
            "body": body,
        },
        key,
    )


def publish(
    conn: ledger.Connection,
    key: Ed25519PrivateKey,
    prefix: str,
    *,
    kind: str,
    site: str,
    device: str | None,
    body: dict[str, Any],
    send: Callable[[str, bytes], bool],
) -> Publication:
    """Reserve the next version, sign, `send` (True once the broker took it), record it.

    If the broker does not take it, the transaction rolls back and the version is not used.
    """
    if kind not in KINDS:
        raise MasterDataError(f"--kind {kind!r} is not one of {', '.join(KINDS)}")
    for what, value in (("--site", site), ("--device", device)):
        if value is not None and not NAME.fullmatch(value):
            raise MasterDataError(f"{what} {value!r} must match {NAME.pattern}")
    target = device or SITE_WIDE
    doc = body.get("doc") if kind == "manifest" else None
    slot = kind if doc is None else f"{kind}/{doc}"
    where = topic(prefix, kind, site, target, doc if isinstance(doc, str) else None)
    with conn.transaction(), conn.cursor() as cur:
        ledger.lock_all(cur, ledger.LOCK_DOWNLINK, [f"master/{site}/{target}/{slot}"])
        cur.execute(
            "SELECT coalesce(max(version), 0) FROM master_versions"
            " WHERE site = %s AND device = %s AND kind = %s",
            (site, target, slot),
        )
        row = cur.fetchone()
        version = (int(row[0]) if row else 0) + 1
        if version > MAX_VERSION:
            raise MasterDataError(f"{slot} for {site}/{target}: version would pass 2^53-1")
        now = time.time()
        payload = envelope(key, kind, version, site=site, device=target, body=body, now=now)
        if len(payload) > MAX_BYTES:
            raise MasterDataError(f"the signed envelope is {len(payload)} bytes > {MAX_BYTES}")
        if not send(where, payload):
            raise MasterDataError(f"the broker did not acknowledge {where}; nothing recorded")
        cur.execute(
            "INSERT INTO master_versions (site, device, kind, version, issued, digest, payload)"
            " VALUES (%s, %s, %s, %s, to_timestamp(%s), %s, %s)",
            (site, target, slot, version, now, hashlib.sha256(payload).digest(), payload),
        )
    return Publication(where, payload, version)
