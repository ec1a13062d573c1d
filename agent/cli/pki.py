"""`tracescan pki`: a small CA for the broker's mutual TLS (`agent.uplink.pki`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from agent.cli.station import EX_USAGE, add_command


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `tracescan pki` and its four subcommands."""
    p = add_command(
        sub,
        "pki",
        summary="a small CA: broker, device and client TLS certificates",
        description=(
            "init creates the CA (ca.crt, ca.key); broker issues the broker's server certificate\n"
            "(SAN: the names and IPs given, default localhost 127.0.0.1); device issues a device\n"
            "certificate with CN SITE/DEVICE (the broker's ACL pattern); client a site bridge\n"
            "(CN = site) or service certificate. Keys are written 0600. Prints the files made."
        ),
        exits=[(0, "certificate and key written"), (EX_USAGE, "usage error, or the CA refused")],
        examples=[
            "tracescan pki --dir /etc/mosquitto/tracescan init",
            "tracescan pki --dir /etc/mosquitto/tracescan broker mqtt.example.net 10.0.0.5",
            "tracescan pki --dir /etc/mosquitto/tracescan device --site site-01 --device station-01",
        ],
    )
    p.add_argument("--dir", required=True, help="PKI directory (ca.crt, ca.key, ...)")
    pki_sub = p.add_subparsers(
        dest="pki_command",
        required=True,
        metavar="{init,broker,device,client}",
        help="what to create",
    )
    init = pki_sub.add_parser("init", help="create the CA")
    init.add_argument("--name", default="tracescan CA", help="the CA's common name")
    init.add_argument("--days", type=int, default=3650, help="validity in days (default: 3650)")
    broker = pki_sub.add_parser("broker", help="the broker's server certificate")
    broker.add_argument(
        "names", nargs="*", help="DNS names / IP addresses (default: localhost 127.0.0.1)"
    )
    device = pki_sub.add_parser("device", help="a device certificate, CN = SITE/DEVICE")
    device.add_argument("--site", required=True, help="the device's [device] site")
    device.add_argument("--device", required=True, help="the device's [device] id")
    client = pki_sub.add_parser("client", help="a site bridge (CN = site) or service certificate")
    client.add_argument("client", metavar="NAME", help="the certificate's common name")
    p.set_defaults(func=pki)


def pki(args: argparse.Namespace) -> int:
    """Create the CA or issue one certificate; print the certificate and key paths."""
    from agent.uplink import pki as ca  # noqa: PLC0415 - only this command needs it

    directory = Path(args.dir)
    try:
        if args.pki_command == "init":
            made = ca.create_ca(directory, args.name, args.days).files
        elif args.pki_command == "broker":
            made = ca.issue_broker(directory, tuple(args.names or ca.DEFAULT_BROKER_NAMES))
        elif args.pki_command == "device":
            made = ca.issue_device(directory, args.site, args.device)
        else:
            made = ca.issue_client(directory, args.client)
    except ca.PkiError as exc:
        print(f"tracescan pki: {exc}", file=sys.stderr)
        return EX_USAGE
    print(f"{made.cert}\n{made.key}")
    return 0
