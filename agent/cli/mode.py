"""`tracescan mode`: set the running agent's operation (and document) over the local API."""

from __future__ import annotations

import argparse
import json

from agent.cli.station import (
    CONFIG_EXITS,
    EX_NOT_RUNNING,
    add_command,
    add_config_option,
    call_agent,
    load_config,
)
from agent.rules.operations import OPERATIONS


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `tracescan mode`."""
    p = add_command(
        sub,
        "mode",
        summary="set the running agent's operation (and document)",
        description=(
            "Changes the operation in force (as scanning TSC:OP:... would) for one scanner or\n"
            "all of them, and opens or clears a document (bill / prescription id). Prints the\n"
            "agent's reply as one JSON object."
        ),
        exits=[
            (0, "the agent applied it"),
            (1, "the agent refused it (the reply says why)"),
            (EX_NOT_RUNNING, "the agent is not running (or its local API is off)"),
            *CONFIG_EXITS,
        ],
        examples=[
            "tracescan mode receive --doc PO-1001 --source dock --config tracescan.toml",
            "tracescan mode dispense --doc '' --config tracescan.toml   # clear the document",
        ],
    )
    p.add_argument("op", choices=OPERATIONS, help="the operation in force from now on")
    p.add_argument("--doc", help="bill / prescription id ('' clears it)")
    p.add_argument("--source", default="*", help="one scanner's name (default: every scanner)")
    add_config_option(p)
    p.set_defaults(func=mode)


def mode(args: argparse.Namespace) -> int:
    """Ask the agent to switch; print its reply."""
    params: dict[str, object] = {"op": args.op, "source": args.source}
    if args.doc is not None:
        params["doc"] = args.doc
    reply = call_agent(load_config(args), "mode", **params)
    print(json.dumps(reply, ensure_ascii=False))
    return 0 if reply.get("ok") else 1
