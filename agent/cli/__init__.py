"""The `tracescan` command: one module per subcommand, assembled here.

Each module in `agent.cli` registers its own subparser and handler (`register(sub)`); what
they share — the configuration, the station's store, the local API, exit statuses and the
mapping of known failures to one-line messages — is `agent.cli.station`.

Nothing slow is imported before `main` runs (not even argparse), so a Ctrl-C right after
start is met by `main`'s handler, not by a traceback from an import; `tracescan run` then
catches signals itself before loading the daemon.
"""

from __future__ import annotations

import sys

# Not `typing.TYPE_CHECKING`: importing typing alone takes milliseconds in which a Ctrl-C
# would still be a traceback. Type checkers treat any name TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Console-script entry point: the exit status of the subcommand."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        _forget_interrupt()
        if _command(sys.argv[1:] if argv is None else argv) == "run":
            # Ctrl-C before `run` could catch it: a stop asked before anything started.
            print("tracescan run: interrupted during start-up; stopped", file=sys.stderr)
            return 0
        print("tracescan: interrupted", file=sys.stderr)
        return 130  # 128 + SIGINT, as a shell reports it
    except BrokenPipeError:
        # The reader of our output went away (`tracescan status | head -1`): nothing to say.
        _drop_stdout()
        return 141  # 128 + SIGPIPE


def _main(argv: Sequence[str] | None) -> int:
    from agent.cli import station  # noqa: PLC0415 - see the module docstring
    from agent.ops import logs  # noqa: PLC0415

    args = parser().parse_args(argv)
    logs.setup(args.verbose)  # logfmt to journald under systemd
    try:
        status: int = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the handlers, not at exit
    except Exception as exc:
        failure = station.explain(exc)
        if failure is None:
            raise
        print(f"tracescan {args.command}: {failure.message}", file=sys.stderr)
        return failure.status
    return status


def parser() -> argparse.ArgumentParser:
    """The whole command line: every subcommand module registers itself."""
    import argparse  # noqa: PLC0415

    from agent import __version__  # noqa: PLC0415
    from agent.cli import (  # noqa: PLC0415
        ack,
        calibrate,
        check,
        export,
        keygen,
        mode,
        pki,
        pubkey,
        run,
        sheet,
        station,
        status,
    )

    p = argparse.ArgumentParser(
        prog="tracescan",
        description=(
            "Drug traceability scanning agent: reads barcode scanners, validates trace codes,\n"
            "stores every scan signed and encrypted, and publishes it over MQTT.\n"
            "`tracescan COMMAND --help` describes each command, its exit statuses and examples."
        ),
        epilog=(
            "configuration: --config FILE, or TRACESCAN_CONFIG; invalid configuration exits 78.\n"
            "example:\n  tracescan run --config /etc/tracescan/tracescan.toml"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"tracescan {__version__}")
    station.add_verbose_option(p)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # In the order `tracescan --help` lists them.
    for command in (run, check, status, mode, ack, export, pubkey, keygen, pki, sheet, calibrate):
        command.register(sub)
    return p


def _command(argv: Sequence[str]) -> str | None:
    """The subcommand named in `argv` (the first word that is not an option)."""
    return next((word for word in argv if not word.startswith("-")), None)


def _forget_interrupt() -> None:
    """Clear CPython's note of an interrupt that escaped an `exec` of a string.

    CPython 3.11 marks a KeyboardInterrupt that leaves code run by `exec(str)` (dataclasses
    build their methods that way, so an import can be interrupted there) as unhandled, and at
    exit kills the process with SIGINT although `main` caught it. The next `exec(str)` clears
    the mark, so the exit status is the one `main` returns.
    """
    exec("")  # noqa: S102 - an empty string: nothing is run


def _drop_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    import os  # noqa: PLC0415

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real stdout (tests capture it): nothing to redirect
        pass


if __name__ == "__main__":
    sys.exit(main())
