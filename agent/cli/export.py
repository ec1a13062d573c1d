"""`tracescan export`: the local record, decrypted for audit, with its chain verified.

Reads every stored record (sent or not, within audit retention) through `agent.store.audit`,
checks each event's signature with the device's public key, `seq` continuity and the `prev`
hash chain, and writes the records as JSON lines or CSV. Any break is reported; the exit
status says so.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any, Final, TextIO

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from agent.cli.station import (
    CONFIG_EXITS,
    DATA_DIR_KEY,
    EX_IOERR,
    CommandError,
    add_command,
    add_config_option,
    load_config,
    record_store,
)
from agent.records.verify import ChainReport, verify_chain, verify_signature
from agent.store import Sealer, keys
from agent.store.audit import read_records

CSV_COLUMNS: Final = ("topic", "seq", "ts", "op", "doc", "code", "kind", "level", "reason", "sent")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `tracescan export`."""
    p = add_command(
        sub,
        "export",
        summary="decrypt the local record for audit and verify its chain",
        description=(
            "Writes every stored record (events, refusals, alerts) to stdout and a summary to\n"
            "stderr: signatures, seq continuity and the hash chain are verified with the\n"
            "device's public key. Reads the store directly; the agent may be running."
        ),
        exits=[
            (0, "records written; signatures and chain verified"),
            (1, "a record is missing, altered or fails its signature (each one listed)"),
            (2, "usage error (e.g. --since that is not a date)"),
            *CONFIG_EXITS,
            (EX_IOERR, "the record store cannot be read"),
        ],
        examples=[
            "tracescan export --config /etc/tracescan/tracescan.toml > audit.jsonl",
            "tracescan export --since 2026-11-01 --format csv --config tracescan.toml > nov.csv",
        ],
    )
    add_config_option(p)
    p.add_argument(
        "--since",
        type=since_time,
        metavar="DATE",
        help="only records stored since this ISO date or date-time (local time unless an "
        "offset is given), e.g. 2026-11-01 or 2026-11-01T08:00+08:00",
    )
    p.add_argument(
        "--format", choices=("jsonl", "csv"), default="jsonl", help="output format (default: jsonl)"
    )
    p.set_defaults(func=export_command)


def since_time(text: str) -> float:
    """`YYYY-MM-DD` or an ISO 8601 date-time (local time unless an offset is given)."""
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date: use YYYY-MM-DD or YYYY-MM-DDTHH:MM (ISO 8601)"
        ) from None
    if when.tzinfo is None:
        when = when.astimezone()
    return when.timestamp()


def export_command(args: argparse.Namespace) -> int:
    """Write the records, report the verification on stderr."""
    config = load_config(args)
    if record_store(config) is None:
        raise CommandError(
            f"{DATA_DIR_KEY}: no record store in {config.device.data_dir}: the agent has not "
            "stored anything with this configuration (is data_dir the station's?)"
        )
    ring = keys.load(config.device.key_dir, create=False)
    report = export(
        config.device.data_dir,
        Sealer(ring.data),
        ring.public,
        sys.stdout,
        fmt=args.format,
        since=args.since,
    )
    sys.stdout.flush()
    span = f"seq {report.first_seq}..{report.last_seq}" if report.events else "no events"
    if report.ok:
        print(
            f"tracescan export: {report.events} events ({span}); signatures and chain verified",
            file=sys.stderr,
        )
        return 0
    print(
        f"tracescan export: {report.events} events ({span}); {len(report.problems)} problem(s):",
        file=sys.stderr,
    )
    for problem in report.problems:
        print(f"  {problem}", file=sys.stderr)
    return 1


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
