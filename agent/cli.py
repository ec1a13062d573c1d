"""The `tracescan` command."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from agent import keys
from agent.catalog import Catalog, CatalogError
from agent.config import EX_CONFIG, Config, ConfigError, load
from agent.operations import DEFAULT_OPERATION, OPERATIONS
from agent.policy import assess

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
            catalog = Catalog.load(Path(args.catalog))
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
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Console-script entry point."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
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
