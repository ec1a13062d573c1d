"""`tracescan run`: the agent, until SIGTERM.

SIGTERM and SIGINT are caught before anything slow happens (the daemon's imports, opening the
store), so a Ctrl-C or a `systemctl stop` during start-up is a clean stop with exit 0, not a
KeyboardInterrupt traceback. `agent.daemon` (paho, drivers) is imported only here.
"""

from __future__ import annotations

import argparse
import signal
import threading
from types import FrameType

from agent.cli.station import (
    CommandError,
    add_command,
    add_config_option,
    load_config,
    writable_data_dir,
)
from agent.config import EX_CONFIG


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `tracescan run`."""
    p = add_command(
        sub,
        "run",
        summary="run the agent: read the scanners, store every scan, publish it over MQTT",
        description=(
            "Runs until SIGTERM or SIGINT, then stops reading scanners, finishes the commits in\n"
            "flight and exits within 5 s. Under systemd it is Type=notify with a watchdog."
        ),
        exits=[
            (0, "stopped by SIGTERM or SIGINT"),
            (
                EX_CONFIG,
                "invalid configuration, or a file or directory it names is unusable "
                "(every problem listed; systemd does not restart)",
            ),
        ],
        examples=["tracescan run --config /etc/tracescan/tracescan.toml"],
    )
    add_config_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Start the agent and run it until a signal."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()  # the agent, once running, takes the same event over

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    config = load_config(args)
    writable_data_dir(config)
    from agent import daemon  # noqa: PLC0415 - keeps the other commands free of paho and drivers

    try:
        return daemon.run(config, stop)
    except daemon.StartupError as exc:
        raise CommandError(f"cannot start: {exc}", EX_CONFIG) from exc
