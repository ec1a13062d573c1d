"""`tracescan pki`: a small CA for the brokers' mutual TLS (`agent.uplink.pki`)."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Final

from agent.cli.station import EX_CANTCREAT, EX_USAGE, CommandError, add_command

if TYPE_CHECKING:
    from agent.uplink.pki import Certificate, Issued

_SUBCOMMANDS: Final = "{init,broker,device,client,revoke,crl,list}"
_WARN_DAYS: Final = 60  # `list` exits 1 when something in use runs out within this many days


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `tracescan pki` and its subcommands."""
    p = add_command(
        sub,
        "pki",
        summary="a small CA: broker, device and client TLS certificates, revocation",
        description=(
            "init creates the CA (ca.crt, ca.key, 10 years) and an empty CRL (crl.pem); broker\n"
            "issues the central broker's server certificate, or with --site a site broker's\n"
            "(SAN: the names and IPs given, default localhost 127.0.0.1); device issues a device\n"
            "certificate with CN SITE/DEVICE (the broker's ACL pattern); client a site bridge\n"
            "(CN = site) or service certificate. Certificates last 825 days (--days); keys are\n"
            "written 0600; nothing is overwritten without --force. Prints the files made.\n"
            "revoke adds every certificate issued to a device or client (--superseded: all but\n"
            "the current one) to crl.pem; crl signs it again for a year; both need a broker\n"
            "reload (systemctl reload mosquitto). list shows each certificate's expiry and state."
        ),
        exits=[
            (0, "done"),
            (1, f"list: a certificate in use or the CRL runs out within {_WARN_DAYS} days"),
            (EX_USAGE, "usage error, or the CA refused (name, lifetime, nothing to revoke)"),
            (EX_CANTCREAT, "a certificate or key already exists (--force), or cannot be written"),
        ],
        examples=[
            "tracescan pki --dir /etc/mosquitto/tracescan init",
            "tracescan pki --dir /etc/mosquitto/tracescan broker mqtt.example.net 10.0.0.5",
            "tracescan pki --dir /etc/mosquitto/tracescan device --site site-01 --device station-01",
            "tracescan pki --dir /etc/mosquitto/tracescan revoke --site site-01 --device station-01",
            "tracescan pki --dir /etc/mosquitto/tracescan list",
        ],
    )
    p.add_argument("--dir", required=True, help="PKI directory (ca.crt, ca.key, ...)")
    pki_sub = p.add_subparsers(
        dest="pki_command", required=True, metavar=_SUBCOMMANDS, help="what to do"
    )
    init = pki_sub.add_parser("init", help="create the CA and an empty CRL")
    init.add_argument("--name", default="tracescan CA", help="the CA's common name")
    init.add_argument("--days", type=int, default=3650, help="validity in days (default: 3650)")
    broker = pki_sub.add_parser("broker", help="a broker's server certificate")
    broker.add_argument(
        "names", nargs="*", help="DNS names / IP addresses (default: localhost 127.0.0.1)"
    )
    broker.add_argument(
        "--site", help="a site broker's certificate (brokers/SITE.crt) instead of the central one"
    )
    device = pki_sub.add_parser("device", help="a device certificate, CN = SITE/DEVICE")
    device.add_argument("--site", required=True, help="the device's [device] site")
    device.add_argument("--device", required=True, help="the device's [device] id")
    client = pki_sub.add_parser("client", help="a site bridge (CN = site) or service certificate")
    client.add_argument("client", metavar="NAME", help="the certificate's common name")
    for issuing in (broker, device, client):
        issuing.add_argument(
            "--days", type=int, default=825, help="validity in days (default: 825)"
        )
        issuing.add_argument(
            "--force", action="store_true", help="replace an existing certificate and key"
        )
    revoke = pki_sub.add_parser("revoke", help="revoke a device's or client's certificates")
    revoke.add_argument("client", metavar="NAME", nargs="?", help="a client's common name")
    revoke.add_argument("--site", help="with --device: the device's site")
    revoke.add_argument("--device", help="with --site: the device's id")
    revoke.add_argument(
        "--superseded",
        action="store_true",
        help="only the certificates replaced by the current one (after a renewal)",
    )
    crl = pki_sub.add_parser("crl", help="sign the CRL again (or create it)")
    crl.add_argument("--days", type=int, default=365, help="until nextUpdate (default: 365)")
    pki_sub.add_parser("list", help="every certificate with its expiry and state")
    p.set_defaults(func=pki)


def pki(args: argparse.Namespace) -> int:
    """Run one `tracescan pki` subcommand."""
    from agent.uplink import pki as ca  # noqa: PLC0415 - only this command needs it

    directory = Path(args.dir)
    try:
        if args.pki_command == "list":
            return _list(ca.inventory(directory), ca.crl_next_update(directory), directory)
        if args.pki_command == "crl":
            print(ca.refresh_crl(directory, args.days))
            return 0
        if args.pki_command == "revoke":
            revoked = ca.revoke(
                directory, _revoked_files(args, directory), superseded_only=args.superseded
            )
            for serial in revoked.serials:
                print(f"revoked {serial:x}")
            print(revoked.crl)
            return 0
        if args.pki_command == "init":
            made = ca.create_ca(directory, args.name, args.days).files
        elif args.pki_command == "broker":
            names = tuple(args.names or ca.DEFAULT_BROKER_NAMES)
            made = ca.issue_broker(directory, names, args.days, site=args.site, force=args.force)
        elif args.pki_command == "device":
            made = ca.issue_device(directory, args.site, args.device, args.days, force=args.force)
        else:
            made = ca.issue_client(directory, args.client, args.days, force=args.force)
    except ca.AlreadyIssued as exc:
        raise CommandError(str(exc), EX_CANTCREAT) from exc
    except ca.PkiError as exc:
        raise CommandError(str(exc), EX_USAGE) from exc
    except OSError as exc:
        raise CommandError(f"{exc.filename}: {exc.strerror}", EX_CANTCREAT) from exc
    print(f"{made.cert}\n{made.key}")
    return 0


def _revoked_files(args: argparse.Namespace, directory: Path) -> Issued:
    """The current files of the identity `revoke` was given: a device or a client."""
    from agent.uplink import pki as ca  # noqa: PLC0415

    if args.client and not (args.site or args.device):
        return ca.client_files(directory, args.client)
    if args.site and args.device and not args.client:
        return ca.device_files(directory, args.site, args.device)
    raise CommandError("revoke: give --site S --device D, or a client NAME", EX_USAGE)


def _list(listed: list[Certificate], crl_next: dt.datetime | None, directory: Path) -> int:
    """Print the inventory; 1 when a certificate in use or the CRL runs out soon."""
    now = dt.datetime.now(dt.UTC)
    rows = [("NAME", "EXPIRES", "DAYS", "SERIAL", "FILE", "STATE")]
    soon: list[str] = []
    for c in listed:
        left = (c.not_after - now).days
        rows.append(
            (
                c.common_name,
                f"{c.not_after:%Y-%m-%d}",
                str(left),
                f"{c.serial:x}",
                str(c.path.relative_to(directory)),
                c.state,
            )
        )
        if c.in_use and c.state in ("valid", "expired") and left < _WARN_DAYS:
            soon.append(f"{c.common_name} ({c.path.relative_to(directory)})")
    if crl_next is None:
        soon.append("crl.pem (missing: `tracescan pki crl` creates it)")
    else:
        left = (crl_next - now).days
        state = "valid" if crl_next > now else "expired"
        rows.append(("crl.pem", f"{crl_next:%Y-%m-%d}", str(left), "-", "crl.pem", state))
        if left < _WARN_DAYS:
            soon.append("crl.pem (`tracescan pki crl`, then reload the brokers)")
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join([*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[-1]]))
    if soon:
        print(f"tracescan pki: renew within {_WARN_DAYS} days: " + ", ".join(soon), file=sys.stderr)
        return 1
    return 0
