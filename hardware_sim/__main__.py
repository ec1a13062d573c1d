"""`python -m hardware_sim {serial,demo} ...`."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

from hardware_sim.serial_scanner import VirtualSerialScanner
from hardware_sim.workload import unit_codes


def _serial(args: argparse.Namespace) -> int:
    codes = (
        [line.strip() for line in Path(args.codes).read_text().splitlines() if line.strip()]
        if args.codes
        else []
    )
    with VirtualSerialScanner(Path(args.link) if args.link else None) as scanner:
        print(f"virtual scanner: {scanner.port}", flush=True)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        time.sleep(args.delay)
        batch = codes or unit_codes(args.count, start=args.start)
        scanner.scan_many(batch, rate=args.rate)
        while args.hold:
            time.sleep(1)
    return 0


def main() -> int:
    """Command-line entry."""
    p = argparse.ArgumentParser(prog="python -m hardware_sim")
    sub = p.add_subparsers(dest="what", required=True)
    s = sub.add_parser("serial", help="a virtual serial scanner on a pty that types codes")
    s.add_argument("--link", help="create this symlink to the pty (the agent's scanner.port)")
    s.add_argument("--codes", help="file with one code per line (default: generated unit codes)")
    s.add_argument("--count", type=int, default=10)
    s.add_argument("--start", type=int, default=1, help="first serial of generated codes")
    s.add_argument(
        "--rate", type=float, default=5.0, help="scans per second (0: as fast as possible)"
    )
    s.add_argument("--delay", type=float, default=1.0, help="seconds to wait before typing")
    s.add_argument("--hold", action="store_true", help="keep the device present after typing")
    s.set_defaults(func=_serial)
    d = sub.add_parser("demo", help="broker + agent + virtual scanner + subscriber, end to end")
    d.set_defaults(func=lambda a: __import__("hardware_sim.demo").demo.main())
    args = p.parse_args()
    status: int = args.func(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
