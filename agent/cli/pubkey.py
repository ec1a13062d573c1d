"""`tracescan pubkey`: the device's Ed25519 public key, for enrolling it centrally."""

from __future__ import annotations

import argparse

from agent.cli.station import CONFIG_EXITS, add_command, add_config_option, load_config, load_keys


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `tracescan pubkey`."""
    p = add_command(
        sub,
        "pubkey",
        summary="print the device's Ed25519 public key (base64 of the raw 32 bytes)",
        description=(
            "Creates the keys in key_dir (0700/0600) on first use, as long as no store holds\n"
            "records sealed with other keys. Give the printed key to `tracescan-central enroll`."
        ),
        exits=[(0, "the key was printed"), *CONFIG_EXITS],
        examples=["tracescan pubkey --config /etc/tracescan/tracescan.toml"],
    )
    add_config_option(p)
    p.set_defaults(func=pubkey)


def pubkey(args: argparse.Namespace) -> int:
    """Print the public key."""
    print(load_keys(load_config(args)).public_b64())
    return 0
