"""The `tracescan-central` command: pubkey, enroll, run, export, report, master publish."""

from __future__ import annotations

import argparse
import base64
import binascii
import datetime as dt
import json
import logging
import os
import signal
import sys
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from agent.config import EX_CONFIG, ConfigError
from agent.ops import logs
from agent.store import keys
from central import ledger
from central.config import LedgerConfig, load
from central.intake import NAME
from central.master import KINDS, MasterDataError

EX_USAGE = 2
log = logging.getLogger("central")


def _config(args: argparse.Namespace) -> LedgerConfig:
    value = args.config or os.environ.get("TRACESCAN_CENTRAL_CONFIG")
    if not value:
        raise ConfigError(
            ["--config: no configuration file given (or set TRACESCAN_CENTRAL_CONFIG)"]
        )
    return load(Path(value))


def _database(config: LedgerConfig) -> ledger.Connection:
    conn = ledger.connect(config.database.dsn, config.database.connect_timeout)
    ledger.migrate(conn)
    return conn


def _name(value: str, what: str) -> str:
    if not NAME.fullmatch(value):
        raise argparse.ArgumentTypeError(f"{what} {value!r} must match {NAME.pattern}")
    return value


def _cmd_pubkey(args: argparse.Namespace) -> int:
    config = _config(args)
    key = keys.signing_key(config.central.key_dir)
    print(base64.b64encode(key.public_key().public_bytes_raw()).decode("ascii"))
    return 0


def _cmd_enroll(args: argparse.Namespace) -> int:
    try:
        raw = base64.b64decode(args.pubkey.strip(), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        print(
            "tracescan-central enroll: --pubkey must be base64 of 32 raw bytes"
            " (what `tracescan pubkey` prints on the device)",
            file=sys.stderr,
        )
        return EX_USAGE
    config = _config(args)
    with _database(config) as conn:
        try:
            outcome = ledger.enroll(conn, args.site, args.device, raw, replace=args.replace)
        except ledger.LedgerError as exc:
            print(f"tracescan-central enroll: {exc}", file=sys.stderr)
            return 1
    print(f"{args.site}/{args.device}: {outcome}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from central.ingest import Consumer  # noqa: PLC0415 - paho only for this command

    config = _config(args)
    key = keys.signing_key(config.central.key_dir)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    consumer = Consumer(config, key, stop)
    failed: list[BaseException] = []

    def consume() -> None:
        try:
            consumer.run()
        except BaseException as exc:  # handed to the main thread: operators see no traceback
            failed.append(exc)
            stop.set()

    # The consumer runs on its own thread so that this one is always free to take SIGTERM,
    # even while the consumer waits on the database or the broker.
    worker = threading.Thread(target=consume, name="consumer")
    worker.start()
    while worker.is_alive():
        worker.join(0.2)
    if not failed:
        return 0
    exc = failed[0]
    if isinstance(exc, ledger.LedgerError | keys.KeyStoreError):
        raise exc
    if isinstance(exc, OSError):
        print(f"tracescan-central run: {exc}", file=sys.stderr)
        return EX_CONFIG
    log.debug("consumer failed", exc_info=exc)
    print(f"tracescan-central run: stopped by an unexpected error: {exc!r}", file=sys.stderr)
    return 1


def _cmd_export(args: argparse.Namespace) -> int:
    config = _config(args)
    out = sys.stdout.buffer
    n = 0
    with _database(config) as conn:
        for payload in ledger.export(conn, args.site, args.device):
            out.write(payload + b"\n")
            n += 1
    out.flush()
    print(f"tracescan-central export: {n} events of {args.site}/{args.device}", file=sys.stderr)
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from central import report  # noqa: PLC0415

    day = None
    if args.day:
        try:
            day = dt.date.fromisoformat(args.day)
        except ValueError:
            print(
                f"tracescan-central report: --day {args.day!r} is not YYYY-MM-DD", file=sys.stderr
            )
            return EX_USAGE
    config = _config(args)
    with _database(config) as conn:
        figures = report.gather(conn, day, config.central.timezone)
    if args.json:
        print(json.dumps(figures, ensure_ascii=False, sort_keys=True))
    else:
        print(report.render(figures))
    return 0


def _cmd_master_publish(args: argparse.Namespace) -> int:
    from central import master  # noqa: PLC0415

    config = _config(args)
    key = keys.signing_key(config.central.key_dir)
    try:
        body = master.read_body(Path(args.file), args.kind, args.doc)
        with _database(config) as conn:
            done = master.publish(
                conn,
                key,
                config.central.topic_prefix,
                kind=args.kind,
                site=args.site,
                device=args.device,
                body=body,
                send=lambda topic, payload: _publish_once(config, topic, payload),
            )
    except MasterDataError as exc:
        print(f"tracescan-central master publish: {exc}", file=sys.stderr)
        return 1
    print(f"{done.topic}: version {done.version} ({len(done.payload)} bytes, retained)")
    return 0


def _publish_once(config: LedgerConfig, topic: str, payload: bytes) -> bool:
    """Connect, publish retained at QoS 1, wait for the PUBACK, disconnect."""
    import paho.mqtt.client as mqtt  # noqa: PLC0415
    from paho.mqtt.enums import CallbackAPIVersion  # noqa: PLC0415

    from agent.uplink.tls import client_context  # noqa: PLC0415

    cfg = config.mqtt
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"ledger-master-{uuid.uuid4().hex[:8]}",
        protocol=mqtt.MQTTv5,
    )
    if cfg.ca_file or cfg.cert_file:
        client.tls_set_context(client_context(cfg.ca_file, cfg.cert_file, cfg.key_file))
    if cfg.username:
        client.username_pw_set(cfg.username, cfg.password or None)
    try:
        client.connect(cfg.host, cfg.port, cfg.keepalive)
    except OSError as exc:
        raise MasterDataError(f"mqtt: cannot reach {cfg.host}:{cfg.port} ({exc})") from exc
    client.loop_start()
    try:
        info = client.publish(topic, payload, qos=1, retain=True)
        try:
            info.wait_for_publish(10)
        except (RuntimeError, ValueError):
            return False
        return info.is_published()
    finally:
        client.disconnect()
        client.loop_stop()


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tracescan-central", description="The central ledger of tracescan devices"
    )
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    def command(name: str, help_: str) -> argparse.ArgumentParser:
        c = sub.add_parser(name, help=help_)
        c.add_argument("--config", help="TOML configuration (default: $TRACESCAN_CENTRAL_CONFIG)")
        return c

    def device_args(c: argparse.ArgumentParser, *, device_required: bool = True) -> None:
        c.add_argument("--site", required=True, type=lambda v: _name(v, "--site"))
        c.add_argument("--device", required=device_required, type=lambda v: _name(v, "--device"))

    command("pubkey", "the central public key (base64, raw 32 bytes)").set_defaults(
        func=_cmd_pubkey
    )
    enroll = command("enroll", "register a device's public key")
    device_args(enroll)
    enroll.add_argument("--pubkey", required=True, help="what `tracescan pubkey` printed")
    enroll.add_argument("--replace", action="store_true", help="replace an enrolled key")
    enroll.set_defaults(func=_cmd_enroll)
    command("run", "consume device streams until SIGTERM").set_defaults(func=_cmd_run)
    export = command("export", "a device's stored events in seq order, byte-identical")
    device_args(export)
    export.add_argument("--format", choices=("jsonl",), default="jsonl")
    export.set_defaults(func=_cmd_export)
    rep = command("report", "per site, device and day: events, gaps, conflicts, rejects, alerts")
    rep.add_argument("--json", action="store_true", help="one JSON object")
    rep.add_argument("--day", help="only this day (YYYY-MM-DD)")
    rep.set_defaults(func=_cmd_report)
    master = sub.add_parser("master", help="signed master data for devices")
    master_sub = master.add_subparsers(dest="master_command", required=True)
    pub = master_sub.add_parser("publish", help="sign and publish master data, retained")
    pub.add_argument("--config", help="TOML configuration (default: $TRACESCAN_CENTRAL_CONFIG)")
    pub.add_argument("--kind", required=True, choices=KINDS)
    pub.add_argument("--file", required=True, help="the set as JSON (without version)")
    device_args(pub, device_required=False)
    pub.add_argument("--doc", help="a manifest's document id")
    pub.set_defaults(func=_cmd_master_publish)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Console-script entry point."""
    args = _parser().parse_args(argv)
    logs.setup(args.verbose)
    try:
        status: int = args.func(args)
    except ConfigError as exc:
        print("tracescan-central: invalid configuration:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return EX_CONFIG
    except keys.KeyStoreError as exc:
        print(f"tracescan-central: keys: {exc}", file=sys.stderr)
        return EX_CONFIG
    except ledger.LedgerError as exc:
        print(f"tracescan-central: {exc}", file=sys.stderr)
        return EX_CONFIG
    return status


if __name__ == "__main__":
    sys.exit(main())
