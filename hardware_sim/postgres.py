"""A real PostgreSQL server in a temporary directory on a free port, for the central ledger's
tests, benchmarks and demo.

PostgreSQL refuses to run as root, so as root `initdb` and the server run as the `postgres`
user (the child drops to it before exec, like `runuser -u postgres`, but signals reach the
server itself), with its data and socket directory in a folder that user owns. The
superuser is `tracescan` and local connections are trusted: this is a throwaway server bound
to 127.0.0.1, never a deployment.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from hardware_sim.broker import free_port, wait_for_port

SUPERUSER = "tracescan"


def postgres_bindir() -> Path:
    """Where `initdb` and `postgres` are (Debian: /usr/lib/postgresql/<version>/bin)."""
    found = shutil.which("initdb") or shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/postgres"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if not versions:
        raise FileNotFoundError("PostgreSQL is not installed (apt-get install postgresql)")
    return Path(versions[-1]).parent


class LocalPostgres:
    """`initdb` + `postgres` on 127.0.0.1:`port`; `dsn(db)` for each database made in it."""

    def __init__(self, *, durable: bool = True, port: int | None = None) -> None:
        self.port = port or free_port()
        #: False trades crash safety for speed (fsync off): fine for tests whose server never
        #: crashes; benchmarks keep the real cost.
        self.durable = durable
        self._tmp = tempfile.mkdtemp(prefix="tracescan-pg-")
        self.root = Path(self._tmp)
        self.proc: subprocess.Popen[bytes] | None = None
        self._user = "postgres" if os.geteuid() == 0 else None

    def _owner(self) -> dict[str, object]:
        """Popen arguments that run a child as the cluster's owner."""
        if self._user is None:
            return {}
        entry = pwd.getpwnam(self._user)
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}

    def start(self) -> LocalPostgres:
        """Create the cluster and start the server; returns when it accepts connections."""
        bindir = postgres_bindir()
        if self._user:
            # mkdtemp makes 0700 for root: hand the folder to the user the server runs as.
            entry = pwd.getpwnam(self._user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        data, sock = self.root / "data", self.root / "sock"
        log = self.root / "postgres.log"
        initdb = [str(bindir / "initdb"), "-D", str(data), "-U", SUPERUSER, "--auth=trust"]
        subprocess.run(
            [*initdb, "-E", "UTF8", "--locale=C", "--no-sync"],
            check=True,
            capture_output=True,
            cwd=self.root,
            **self._owner(),  # type: ignore[call-overload]
        )
        subprocess.run(["mkdir", "-p", str(sock)], check=True, **self._owner())  # type: ignore[call-overload]
        settings = [
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"unix_socket_directories={sock}",
            "-c",
            "max_connections=100",
            "-c",
            "shared_buffers=128MB",
        ]
        if not self.durable:
            settings += ["-c", "fsync=off", "-c", "synchronous_commit=off"]
        with log.open("ab") as out:
            self.proc = subprocess.Popen(  # type: ignore[call-overload]
                [str(bindir / "postgres"), "-D", str(data), "-p", str(self.port), *settings],
                stdout=out,
                stderr=out,
                cwd=self.root,
                **self._owner(),
            )
        try:
            wait_for_port(self.port, timeout=30)
            self._wait_ready()
        except (TimeoutError, subprocess.CalledProcessError):
            self.close()
            raise
        return self

    def _wait_ready(self) -> None:
        """The port opens before the server takes connections: ask until it does."""
        import psycopg  # noqa: PLC0415 - only the central extra has it

        deadline = time.monotonic() + 30
        while True:
            try:
                psycopg.connect(self.dsn("postgres"), connect_timeout=2).close()
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
            else:
                return

    def dsn(self, database: str = "postgres") -> str:
        """A connection string for `database` as the superuser."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create an empty database and return its DSN."""
        import psycopg  # noqa: PLC0415

        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.dsn(name)

    def stop(self) -> None:
        """Fast shutdown (SIGINT), then SIGKILL."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(2)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def close(self) -> None:
        """Stop and remove the cluster."""
        self.stop()
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> LocalPostgres:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
