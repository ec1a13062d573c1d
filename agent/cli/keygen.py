"""`tracescan keygen`: create missing keys, or add a new data key."""

from __future__ import annotations

import argparse

from agent.cli.station import CONFIG_EXITS, add_command, add_config_option, load_config, load_keys
from agent.store import instance, keys


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `tracescan keygen`."""
    p = add_command(
        sub,
        "keygen",
        summary="create missing keys (0700/0600); optionally rotate the data key",
        description=(
            "Keys live in key_dir: signing.key (Ed25519), index.key (HMAC), data-N.key\n"
            "(AES-256). A missing key is created only while no store holds data sealed with it.\n"
            "--rotate-data-key adds data-(N+1).key for new records; older records stay readable.\n"
            "An agent that is running keeps sealing with the key it started with until it is\n"
            "restarted; the command says whether one is running. Prints the public key last."
        ),
        exits=[(0, "keys ready"), *CONFIG_EXITS],
        examples=[
            "tracescan keygen --config /etc/tracescan/tracescan.toml",
            "tracescan keygen --rotate-data-key --config /etc/tracescan/tracescan.toml",
        ],
    )
    add_config_option(p)
    p.add_argument(
        "--rotate-data-key", action="store_true", help="add a new data key for new records"
    )
    p.set_defaults(func=keygen)


def keygen(args: argparse.Namespace) -> int:
    """Create or rotate keys; print what is there and the public key."""
    config = load_config(args)
    ring = load_keys(config)
    if args.rotate_data_key:
        kid = keys.rotate_data_key(config.device.key_dir)
        print(f"new data key {kid} in {config.device.key_dir}; older records stay readable")
        # The agent reads its keys once, at start: say so, or the operator believes new
        # records are sealed with the new key while the running agent still uses the old one.
        running = instance.holder(config.device.data_dir)
        if running is not None:
            pid = f" (pid {running.pid})" if running.pid else ""
            print(
                f"the agent is running{pid} and keeps sealing new records with data key "
                f"{max(ring.data)} until it is restarted: systemctl restart tracescan "
                "(or stop and start `tracescan run`)"
            )
        else:
            print(
                f"the agent is not running: it seals new records with data key {kid} from its next start"
            )
    else:
        print(f"keys ready in {config.device.key_dir} (data keys: {sorted(ring.data)})")
    print(ring.public_b64())
    return 0
