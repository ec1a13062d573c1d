"""`tracescan export`: the local record, decrypted for audit, with its chain verified.

Reads every stored record (sent or not, within audit retention), checks each event's
signature with the device's public key, `seq` continuity and the `prev` hash chain, and
writes the records as JSON lines or CSV. Any break is reported; the exit status says so.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path
from typing import Any, TextIO

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from agent.records.verify import ChainReport, verify_chain, verify_signature
from agent.store import Sealer
from agent.store.audit import read_records

CSV_COLUMNS = ("topic", "seq", "ts", "op", "doc", "code", "kind", "level", "reason", "sent")


def parse_since(text: str) -> float:
    """`YYYY-MM-DD` or an ISO 8601 date-time (local time unless an offset is given)."""
    when = dt.datetime.fromisoformat(text)
    if when.tzinfo is None:
        when = when.astimezone()
    return when.timestamp()


def export(
    data_dir: Path,
    sealer: Sealer,
    public: Ed25519PublicKey,
    out: TextIO,
    *,
    fmt: str = "jsonl",
    since: float | None = None,
) -> ChainReport:
    """Write the records to `out` and return the verification report for the events."""
    problems: list[str] = []
    events: list[bytes] = []
    writer = csv.writer(out) if fmt == "csv" else None
    if writer:
        writer.writerow(CSV_COLUMNS)
    for item in read_records(data_dir, sealer, since):
        if isinstance(item, str):
            problems.append(item)
            continue
        obj: dict[str, Any] = json.loads(item.payload)
        if item.topic == "event":
            events.append(item.payload)
        elif not verify_signature(obj, public):
            problems.append(f"row {item.rid}: {item.topic} record has a bad signature")
        sent = dt.datetime.fromtimestamp(item.sent, dt.UTC).isoformat() if item.sent else None
        if writer:
            writer.writerow([item.topic, *(obj.get(k) for k in CSV_COLUMNS[1:-1]), sent or ""])
        else:
            line = {"topic": item.topic, "sent": sent, "record": obj}
            out.write(json.dumps(line, ensure_ascii=False, sort_keys=True) + "\n")
    report = verify_chain(events, public, expect_first=None)
    report.problems[:0] = problems
    return report
