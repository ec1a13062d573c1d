"""`tracescan check`: stateless code recognition, one JSON line per input (SPEC's contract).

Loads no configuration, no store and no driver: only `agent.codes` and `agent.rules`, so it
starts fast and runs anywhere (no paho, pyserial or OpenCV import).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

from agent.cli.station import EX_USAGE, add_command
from agent.rules.catalog import Catalog, CatalogError
from agent.rules.decision import assess
from agent.rules.operations import DEFAULT_OPERATION, OPERATIONS
from agent.service.masterfiles import read_catalog


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `tracescan check`."""
    p = add_command(
        sub,
        "check",
        summary="recognise codes without any state; one JSON line per input",
        description=(
            "Each input goes through the same normalisation as scanner input (AIM prefixes,\n"
            "GS as 0x1D, <GS>, {GS} or \\x1d, trailing CR/LF) and the rules of the operation.\n"
            'Output per input: {"input", "accepted", "kind", "level", "reason", "message",\n'
            '"fields"}, in input order.'
        ),
        exits=[
            (0, "every input accepted"),
            (1, "at least one input refused"),
            (EX_USAGE, "usage error (unknown option or operation, unreadable catalog)"),
        ],
        examples=[
            "tracescan check 81234560000000011234",
            "tracescan check --op receive --catalog catalog.csv - < codes.txt",
        ],
    )
    p.add_argument(
        "--op",
        default=DEFAULT_OPERATION,
        choices=OPERATIONS,
        help=f"the operation whose rules apply (default: {DEFAULT_OPERATION})",
    )
    p.add_argument(
        "--catalog", metavar="CSV", help="catalog CSV (code,level,ratio,name) giving pack levels"
    )
    p.add_argument(
        "--lang", default="zh", choices=("zh", "en"), help="language of `message` (default: zh)"
    )
    p.add_argument(
        "codes", nargs="+", metavar="CODE", help="codes to check, or - for one per line on stdin"
    )
    p.set_defaults(func=check)


def check(args: argparse.Namespace) -> int:
    """Print one JSON line per input; 0 if all were accepted, 1 if any was refused."""
    catalog = Catalog()
    if args.catalog:
        try:
            catalog = read_catalog(Path(args.catalog))
        except CatalogError as exc:
            print(f"tracescan check: {exc}", file=sys.stderr)
            return EX_USAGE
    inputs: list[str] = []
    for code in args.codes:
        if code == "-":
            inputs.extend(line.rstrip("\r\n") for line in sys.stdin)
        else:
            inputs.append(code)
    today = dt.date.today()
    all_ok = True
    out = sys.stdout
    for raw in inputs:
        decision = assess(raw, op=args.op, catalog=catalog, today=today)
        all_ok &= decision.accepted
        out.write(json.dumps(decision.as_check_output(args.lang), ensure_ascii=False) + "\n")
    out.flush()
    return 0 if all_ok else 1
