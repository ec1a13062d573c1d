"""`tracescan status`: is the agent up, and is the site meeting its scan and upload targets?

Asks the running agent over the local API; when it does not answer, reads the store itself
(read-only, with the keys) and says so. The exit status is usable from cron or a monitoring
check: 0 all well, 1 the upload-deadline alarm is on, 3 the agent is not running (the figures
then come from the store, alarm included), 4 the agent cannot be asked (local API off).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from typing import Any, Final

from agent.cli.station import (
    CONFIG_EXITS,
    EX_IOERR,
    EX_NOT_RUNNING,
    AgentNotRunning,
    add_command,
    add_config_option,
    call_agent,
    load_config,
    record_store,
)
from agent.config import Config
from agent.ops.status import gather, render
from agent.store import Sealer, keys

log = logging.getLogger(__name__)

EX_ALARM: Final = 1
EX_UNKNOWN: Final = 4  # as an LSB init script's `status`: cannot tell


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `tracescan status`."""
    p = add_command(
        sub,
        "status",
        summary="uplink, buffer, scan/upload rates, upload-deadline alarm",
        description=(
            "Figures of the last [status] window_hours per operation: accepted, refused, scan\n"
            "rate, uploaded, upload rate, accepted per hour (the window's average); unsent\n"
            "records and the oldest one's age; events past the 7-working-day upload deadline\n"
            "(the alarm); each scanner's device (reading, not there, cannot open; last scan,\n"
            "last error). From the running agent over the local API; when it is stopped, read\n"
            "from the store (the link and the scanners are then `unknown`)."
        ),
        exits=[
            (0, "the agent is running and no alarm is on"),
            (EX_ALARM, "the upload-deadline alarm is on"),
            (EX_NOT_RUNNING, "the agent is not running (figures read from the store, if any)"),
            (EX_UNKNOWN, "the local API is off ([api] enabled = false): running or not is unknown"),
            *CONFIG_EXITS,
            (EX_IOERR, "the record store cannot be read"),
        ],
        examples=[
            "tracescan status --config /etc/tracescan/tracescan.toml",
            "tracescan status --json --config tracescan.toml | jq .operations",
        ],
    )
    p.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    add_config_option(p)
    p.set_defaults(func=status)


def status(args: argparse.Namespace) -> int:
    """Print the figures; the exit status says whether all is well."""
    config = load_config(args)
    down: int | None = None  # why the agent was not asked, as an exit status
    try:
        figures = call_agent(config, "status")
        source = "from the running agent"
    except AgentNotRunning as exc:
        down = EX_NOT_RUNNING if config.api.enabled else EX_UNKNOWN
        stored = _from_store(config)
        if stored is None:
            why = "is not running" if config.api.enabled else "cannot be asked (local API off)"
            print(
                f"tracescan status: the agent {why} and nothing was ever stored in "
                f"{config.device.data_dir} (device.data_dir): start it with "
                "`systemctl start tracescan` or `tracescan run --config FILE`",
                file=sys.stderr,
            )
            log.debug("status: %s", exc)
            return down
        figures = stored
        source = (
            "agent not reachable; read from the store"
            if config.api.enabled
            else "local API off; read from the store"
        )
    if args.json:
        print(json.dumps(figures, ensure_ascii=False, sort_keys=True))
    else:
        print(render(figures, source))
    if down is not None:
        return down
    return EX_ALARM if figures.get("alarm") else 0


def _from_store(config: Config) -> dict[str, Any] | None:
    """The figures read from the store itself, or None when there is no store yet."""
    if record_store(config) is None:
        return None
    ring = keys.load(config.device.key_dir, create=False)
    st = gather(
        config.device.data_dir,
        Sealer(ring.data),
        config.status,
        time.time(),
        central=bool(config.central.public_key),
    )
    return st.as_dict()
