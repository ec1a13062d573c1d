"""What every `tracescan` subcommand shares: the station it acts on and how it fails.

- the configuration (`--config FILE`, else `TRACESCAN_CONFIG`);
- the station's data directory and record store, checked before anything uses them, so a
  `data_dir` that is a file, cannot be created or is read-only is one line naming
  `device.data_dir` (exit 78) instead of a traceback;
- the running agent over the local API (`agent_session`); not reachable → exit 3;
- the exit statuses, and the errors of lower layers mapped to one line an operator can act on
  (`explain`), so nothing reaches systemd or a shell as a traceback with exit status 1.

Help pages are built here too (`add_command`), so every subcommand's `--help` has the same
shape: what it does, its exit statuses, an example.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from agent.config import EX_CONFIG, Config, ConfigError, load
from agent.rules.catalog import CatalogError
from agent.rules.masterdata import MasterDataError
from agent.store import DB_FILE, StoreError, keys

if TYPE_CHECKING:
    from agent.ops.localapi import ApiClient

# Exit statuses. 0 and 1 are each command's own (done / its check failed); 130 (Ctrl-C) and
# 141 (closed pipe) are `main`'s.
EX_USAGE: Final = 2  # argparse's own status for a usage error
EX_NOT_RUNNING: Final = 3  # as an LSB init script's `status`: the agent is not running
EX_NOINPUT: Final = 66  # sysexits.h: an input (a device) does not exist or cannot be read
EX_UNAVAILABLE: Final = 69  # sysexits.h: something the command needs is not installed
EX_CANTCREAT: Final = 73  # sysexits.h: an output file cannot be written
EX_IOERR: Final = 74  # sysexits.h: the record store cannot be read
# EX_CONFIG (78, sysexits.h) comes from agent.config: invalid configuration or start-up

DATA_DIR_KEY: Final = "device.data_dir"

#: The exit statuses every command that reads the configuration can end with.
CONFIG_EXITS: Final = (
    (EX_CONFIG, "invalid configuration, keys or data_dir (every problem listed)"),
)


class CommandError(Exception):
    """A subcommand cannot do its job: one message for the operator and the exit status."""

    def __init__(self, message: str, status: int = EX_CONFIG) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class AgentNotRunning(CommandError):
    """The local API does not answer: the agent is stopped (or its API is off)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, EX_NOT_RUNNING)


def add_command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    *,
    summary: str,
    description: str,
    exits: Sequence[tuple[int, str]],
    examples: Sequence[str],
) -> argparse.ArgumentParser:
    """A subcommand parser whose help says what it does, its exit statuses and examples."""
    statuses = "\n".join(f"  {code:<4} {meaning}" for code, meaning in sorted(exits))
    epilog = "exit status:\n" + statuses + "\n\nexamples:\n" + "\n".join(f"  {e}" for e in examples)
    parser = sub.add_parser(
        name,
        help=summary,
        description=f"{summary}.\n\n{description}".rstrip(),
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_verbose_option(parser, default=argparse.SUPPRESS)
    return parser


def add_verbose_option(parser: argparse.ArgumentParser, default: object = False) -> None:
    """`-v/--verbose`; accepted before and after the subcommand (SUPPRESS keeps the first)."""
    parser.add_argument(
        "-v", "--verbose", action="store_true", default=default, help="log at DEBUG level"
    )


def add_config_option(parser: argparse.ArgumentParser) -> None:
    """`--config FILE` (default: `$TRACESCAN_CONFIG`)."""
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="the agent's TOML configuration (default: $TRACESCAN_CONFIG)",
    )


def output_path(*suffixes: str) -> Callable[[str], Path]:
    """An argparse type: a file to write, ending in one of `suffixes`, in a writable folder.

    Checked before the command does its work, so a wrong `--out` is a usage error (exit 2)
    rather than a traceback after rendering (or after the scan was made).
    """

    def check(text: str) -> Path:
        path = Path(text)
        if path.suffix.lower() not in suffixes:
            raise argparse.ArgumentTypeError(f"{text}: must end in {' or '.join(suffixes)}")
        folder = path.parent
        if not folder.is_dir():
            raise argparse.ArgumentTypeError(f"{text}: folder {folder} does not exist")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise argparse.ArgumentTypeError(f"{text}: folder {folder} is not writable")
        if path.is_dir():
            raise argparse.ArgumentTypeError(f"{text} is a folder; give a file name")
        return path

    return check


def load_config(args: argparse.Namespace) -> Config:
    """The configuration named by `--config` or `TRACESCAN_CONFIG`; `ConfigError` otherwise."""
    value = getattr(args, "config", None) or os.environ.get("TRACESCAN_CONFIG")
    if not value:
        raise ConfigError(["--config: no configuration file given (or set TRACESCAN_CONFIG)"])
    return load(Path(value))


def writable_data_dir(config: Config) -> Path:
    """`data_dir`, created if missing, checked to be a directory this user can write."""
    path = config.device.data_dir
    _not_a_file(path)
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise CommandError(
            f"{DATA_DIR_KEY}: cannot create {path} ({exc.strerror or exc}): create it for the "
            f"agent's user (install -d -m 0700 -o tracescan {path}) or set another data_dir"
        ) from exc
    if not os.access(path, os.W_OK | os.X_OK):
        if os.statvfs(path).f_flag & os.ST_RDONLY:
            why = "is on a read-only file system"
        else:
            why = f"is not writable by this user (uid {os.geteuid()})"
        raise CommandError(
            f"{DATA_DIR_KEY}: {path} {why}: the agent stores every scan there; make it "
            f"writable (chown tracescan {path}) or set another data_dir"
        )
    return path


def record_store(config: Config) -> Path | None:
    """The station's record store (`data_dir/tracescan.db`), or None when nothing was stored."""
    _not_a_file(config.device.data_dir)
    db = config.device.data_dir / DB_FILE
    return db if db.is_file() else None


def load_keys(config: Config) -> keys.KeyRing:
    """The key ring; missing keys are created only while no store holds data sealed with them."""
    return keys.load(config.device.key_dir, create=record_store(config) is None)


def _not_a_file(path: Path) -> None:
    if path.exists() and not path.is_dir():
        raise CommandError(
            f"{DATA_DIR_KEY}: {path} is a file, not a directory: set data_dir to a directory "
            "(the default is /var/lib/tracescan)"
        )


@contextlib.contextmanager
def agent_session(config: Config) -> Iterator[ApiClient]:
    """A connection to the running agent's local API; `AgentNotRunning` when nobody answers."""
    from agent.ops.localapi import ApiClient, ApiError, socket_path  # noqa: PLC0415

    if not config.api.enabled:
        raise AgentNotRunning(
            "the local API is off ([api] enabled = false), so the agent cannot be asked"
        )
    try:
        with ApiClient(socket_path(config.device.data_dir, config.api.socket)) as client:
            yield client
    except ApiError as exc:
        raise AgentNotRunning(f"{exc}: is the agent running? (systemctl status tracescan)") from exc


def call_agent(config: Config, cmd: str, **params: Any) -> dict[str, Any]:
    """One request to the running agent and its reply."""
    with agent_session(config) as client:
        return client.call(cmd, **params)


def explain(exc: BaseException) -> CommandError | None:
    """The operator's message and exit status for a known failure; None for a bug."""
    if isinstance(exc, CommandError):
        return exc
    if isinstance(exc, ConfigError):
        lines = "\n".join(f"  {problem}" for problem in exc.problems)
        return CommandError(f"invalid configuration:\n{lines}", EX_CONFIG)
    if isinstance(exc, keys.KeyStoreError):
        return CommandError(f"keys: {exc}", EX_CONFIG)
    if isinstance(exc, CatalogError):
        return CommandError(f"catalog: {exc}: fix the file or the [catalog] path", EX_CONFIG)
    if isinstance(exc, MasterDataError):
        return CommandError(
            f"master data: {exc}: fix the file or remove it from [masterdata]", EX_CONFIG
        )
    if isinstance(exc, StoreError):
        return CommandError(f"cannot read the record store: {exc}", EX_IOERR)
    return None
