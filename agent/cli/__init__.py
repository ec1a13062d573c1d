"""The `tracescan` command."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from agent.config import EX_CONFIG, Config, ConfigError, load
from agent.ops import logs
from agent.rules.catalog import Catalog, CatalogError
from agent.rules.decision import assess
from agent.rules.operations import DEFAULT_OPERATION, OPERATIONS
from agent.service.masterfiles import read_catalog
from agent.store import keys

EX_USAGE = 2


def _config_path(arg: str | None) -> Path:
    value = arg or os.environ.get("TRACESCAN_CONFIG")
    if not value:
        raise ConfigError(["--config: no configuration file given (or set TRACESCAN_CONFIG)"])
    return Path(value)


def _load_config(arg: str | None) -> Config:
    return load(_config_path(arg))


def _cmd_check(args: argparse.Namespace) -> int:
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


def _cmd_run(args: argparse.Namespace) -> int:
    from agent import daemon  # noqa: PLC0415 - keeps `check` free of paho/serial imports

    return daemon.run(_load_config(args.config))


def _cmd_pubkey(args: argparse.Namespace) -> int:
    config = _load_config(args.config)
    print(keys.load(config.device.key_dir).public_b64())
    return 0


def _cmd_keygen(args: argparse.Namespace) -> int:
    config = _load_config(args.config)
    ring = keys.load(config.device.key_dir)
    if args.rotate_data_key:
        kid = keys.rotate_data_key(config.device.key_dir)
        print(f"new data key {kid} in {config.device.key_dir}; older records stay readable")
    else:
        print(f"keys ready in {config.device.key_dir} (data keys: {sorted(ring.data)})")
    print(ring.public_b64())
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from agent.ops import export  # noqa: PLC0415 - only this command needs it
    from agent.store import Sealer  # noqa: PLC0415

    config = _load_config(args.config)
    ring = keys.load(config.device.key_dir, create=False)
    since = export.parse_since(args.since) if args.since else None
    report = export.export(
        config.device.data_dir,
        Sealer(ring.data),
        ring.public,
        sys.stdout,
        fmt=args.format,
        since=since,
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


def _cmd_pki(args: argparse.Namespace) -> int:
    from agent.uplink import pki  # noqa: PLC0415 - only this command needs it

    directory = Path(args.dir)
    try:
        if args.pki_command == "init":
            made = pki.create_ca(directory, args.name, args.days).files
        elif args.pki_command == "broker":
            made = pki.issue_broker(directory, tuple(args.names or pki.DEFAULT_BROKER_NAMES))
        elif args.pki_command == "device":
            made = pki.issue_device(directory, args.site, args.device)
        else:
            made = pki.issue_client(directory, args.client)
    except pki.PkiError as exc:
        print(f"tracescan pki: {exc}", file=sys.stderr)
        return EX_USAGE
    print(f"{made.cert}\n{made.key}")
    return 0


def _cmd_sheet(args: argparse.Namespace) -> int:
    from agent.rules import commands  # noqa: PLC0415 - Pillow and python-barcode only for this

    out = Path(args.out)
    if out.suffix.lower() not in (".png", ".pdf"):
        print("tracescan sheet: --out must end in .png or .pdf", file=sys.stderr)
        return EX_USAGE
    n = commands.render_sheet(out, args.lang)
    print(f"{out}: {n} command barcodes")
    return 0


# --- ops (issue 8): talking to the running agent over the local API; status ---


def _api_call(args: argparse.Namespace, cmd: str, **params: object) -> int:
    from agent.ops.localapi import ApiClient, ApiError, socket_path  # noqa: PLC0415

    config = _load_config(args.config)
    try:
        with ApiClient(socket_path(config.device.data_dir, config.api.socket)) as client:
            reply = client.call(cmd, **params)
    except ApiError as exc:
        print(f"tracescan {cmd}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(reply, ensure_ascii=False))
    return 0 if reply.get("ok") else 1


def _cmd_mode(args: argparse.Namespace) -> int:
    params: dict[str, object] = {"op": args.op, "source": args.source}
    if args.doc is not None:
        params["doc"] = args.doc
    return _api_call(args, "mode", **params)


def _cmd_ack(args: argparse.Namespace) -> int:
    if args.source != "*":
        return _api_call(args, "ack", source=args.source)
    # No scanner named: release every stopped one (the usual case on a one-scanner counter).
    from agent.ops.localapi import ApiClient, ApiError, socket_path  # noqa: PLC0415

    config = _load_config(args.config)
    try:
        with ApiClient(socket_path(config.device.data_dir, config.api.socket)) as client:
            contexts = client.call("contexts").get("contexts", {})
            for source in [s for s, ctx in contexts.items() if ctx.get("held")]:
                print(json.dumps(client.call("ack", source=source), ensure_ascii=False))
    except ApiError as exc:
        print(f"tracescan ack: {exc}", file=sys.stderr)
        return 1
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    import time  # noqa: PLC0415

    from agent.ops import status  # noqa: PLC0415
    from agent.ops.localapi import ApiClient, ApiError, socket_path  # noqa: PLC0415
    from agent.store import Sealer  # noqa: PLC0415

    config = _load_config(args.config)
    try:
        with ApiClient(socket_path(config.device.data_dir, config.api.socket)) as client:
            figures = client.call("status")
        source = "from the running agent"
    except ApiError:
        # The agent is stopped (or its API is off): read the store itself, with the keys.
        ring = keys.load(config.device.key_dir, create=False)
        st = status.gather(config.device.data_dir, Sealer(ring.data), config.status, time.time())
        figures = st.as_dict()
        source = "agent not reachable; read from the store"
    if args.json:
        print(json.dumps(figures, ensure_ascii=False, sort_keys=True))
    else:
        print(status.render(figures, source))
    return 1 if figures.get("alarm") else 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tracescan", description="Drug traceability scanning agent")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the agent")
    run.add_argument("--config", help="TOML configuration (default: $TRACESCAN_CONFIG)")
    run.set_defaults(func=_cmd_run)

    check = sub.add_parser(
        "check", help="recognise codes without any state; one JSON line per input"
    )
    check.add_argument("--op", default=DEFAULT_OPERATION, choices=OPERATIONS)
    check.add_argument("--catalog", help="catalog CSV (code,level,ratio,name)")
    check.add_argument("--lang", default="zh", choices=("zh", "en"))
    check.add_argument(
        "codes", nargs="+", metavar="CODE", help="codes to check, or - for one per line on stdin"
    )
    check.set_defaults(func=_cmd_check)

    pub = sub.add_parser(
        "pubkey", help="print the device's Ed25519 public key (base64, raw 32 bytes)"
    )
    pub.add_argument("--config", help="TOML configuration (default: $TRACESCAN_CONFIG)")
    pub.set_defaults(func=_cmd_pubkey)
    sh = sub.add_parser(
        "sheet", help="print the command-barcode sheet (operations, end, undo, ack)"
    )
    sh.add_argument("--out", required=True, help="PNG or PDF file to write")
    sh.add_argument("--lang", default="zh", choices=("zh", "en"))
    sh.set_defaults(func=_cmd_sheet)

    kg = sub.add_parser(
        "keygen", help="create missing keys (0700/0600); optionally rotate the data key"
    )
    kg.add_argument("--config", help="TOML configuration (default: $TRACESCAN_CONFIG)")
    kg.add_argument(
        "--rotate-data-key", action="store_true", help="add a new data key for new records"
    )
    kg.set_defaults(func=_cmd_keygen)

    ex = sub.add_parser("export", help="decrypt the local record for audit and verify its chain")
    ex.add_argument("--config", help="TOML configuration (default: $TRACESCAN_CONFIG)")
    ex.add_argument("--since", help="only records stored since this ISO date or date-time")
    ex.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    ex.set_defaults(func=_cmd_export)
    pki = sub.add_parser("pki", help="a small CA: broker, device and client TLS certificates")
    pki.add_argument("--dir", required=True, help="PKI directory (ca.crt, ca.key, ...)")
    pki_sub = pki.add_subparsers(dest="pki_command", required=True)
    init = pki_sub.add_parser("init", help="create the CA")
    init.add_argument("--name", default="tracescan CA", help="the CA's common name")
    init.add_argument("--days", type=int, default=3650)
    broker = pki_sub.add_parser("broker", help="the broker's server certificate")
    broker.add_argument(
        "names", nargs="*", help="DNS names / IP addresses (default: localhost 127.0.0.1)"
    )
    device = pki_sub.add_parser("device", help="a device certificate, CN = SITE/DEVICE")
    device.add_argument("--site", required=True)
    device.add_argument("--device", required=True)
    client = pki_sub.add_parser("client", help="a site bridge (CN = site) or service certificate")
    client.add_argument("client", metavar="NAME")
    pki.set_defaults(func=_cmd_pki)

    # --- ops (issue 8) ---
    mode = sub.add_parser("mode", help="set the running agent's operation (and document)")
    mode.add_argument("op", choices=OPERATIONS)
    mode.add_argument("--doc", help="bill / prescription id ('' clears it)")
    mode.add_argument("--source", default="*", help="one scanner's name (default: all)")
    mode.add_argument("--config", help="TOML configuration (default: $TRACESCAN_CONFIG)")
    mode.set_defaults(func=_cmd_mode)
    ack = sub.add_parser("ack", help="acknowledge an alert: release a stopped scanner")
    ack.add_argument("--source", default="*", help="the scanner's name")
    ack.add_argument("--config", help="TOML configuration (default: $TRACESCAN_CONFIG)")
    ack.set_defaults(func=_cmd_ack)
    st = sub.add_parser("status", help="uplink, buffer, scan/upload rates, upload-deadline alarm")
    st.add_argument("--json", action="store_true", help="one JSON object")
    st.add_argument("--config", help="TOML configuration (default: $TRACESCAN_CONFIG)")
    st.set_defaults(func=_cmd_status)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Console-script entry point."""
    args = _parser().parse_args(argv)
    logs.setup(args.verbose)  # ops (issue 8): logfmt to journald under systemd
    try:
        status: int = args.func(args)
    except ConfigError as exc:
        print("tracescan: invalid configuration:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return EX_CONFIG
    except keys.KeyStoreError as exc:
        print(f"tracescan: keys: {exc}", file=sys.stderr)
        return EX_CONFIG
    except CatalogError as exc:
        print(f"tracescan: catalog: {exc}", file=sys.stderr)
        return EX_CONFIG
    return status


if __name__ == "__main__":
    sys.exit(main())
