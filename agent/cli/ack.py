"""`tracescan ack`: release stopped scanners (the worker's TSC:ACK, from a shell or a POS)."""

from __future__ import annotations

import argparse
import json

from agent.cli.station import (
    CONFIG_EXITS,
    EX_NOT_RUNNING,
    add_command,
    add_config_option,
    agent_session,
    load_config,
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `tracescan ack`."""
    p = add_command(
        sub,
        "ack",
        summary="acknowledge an alert: release a stopped scanner",
        description=(
            "A 回流 suspicion, a blocked pack or a case code at dispensing stops the scanner\n"
            "that read it until someone acknowledges. Without --source every stopped scanner is\n"
            "released. Prints the agent's reply for each release (one JSON object a line), or\n"
            '"nothing to acknowledge".'
        ),
        exits=[
            (0, "released, or nothing was stopped"),
            (1, "the agent refused (the reply says why)"),
            (EX_NOT_RUNNING, "the agent is not running (or its local API is off)"),
            *CONFIG_EXITS,
        ],
        examples=[
            "tracescan ack --config /etc/tracescan/tracescan.toml",
            "tracescan ack --source counter --config /etc/tracescan/tracescan.toml",
        ],
    )
    p.add_argument("--source", default="*", help="the scanner's name (default: every one)")
    add_config_option(p)
    p.set_defaults(func=ack)


def ack(args: argparse.Namespace) -> int:
    """Release the stopped scanner(s)."""
    with agent_session(load_config(args)) as client:
        if args.source != "*":
            reply = client.call("ack", source=args.source)
            if reply.get("ok") and reply.get("released") is None:
                print(f"nothing to acknowledge: scanner {args.source} is not stopped")
                return 0
            print(json.dumps(reply, ensure_ascii=False))
            return 0 if reply.get("ok") else 1
        # No scanner named: release every stopped one (the usual case on a one-scanner counter).
        contexts = client.call("contexts").get("contexts", {})
        held = [source for source, ctx in contexts.items() if ctx.get("held")]
        if not held:
            print("nothing to acknowledge")
            return 0
        all_ok = True
        for source in held:
            reply = client.call("ack", source=source)
            all_ok &= bool(reply.get("ok"))
            print(json.dumps(reply, ensure_ascii=False))
    return 0 if all_ok else 1
