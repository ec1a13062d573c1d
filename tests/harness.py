"""The one test harness: a config builder, the agent in this process, the agent as a process.

- `agent_config()` builds every test's configuration (a TOML-shaped dict with fast test
  defaults); `write_config()` writes it as TOML for a process, `load_config()` parses it.
- `InProcessAgent` is the daemon's composition root (`agent.daemon.Agent`) in this process,
  fed directly: synchronously (decide and commit on the caller's thread) or with a writer
  thread and the uplink running, as the daemon runs them.
- `AgentProcess` is `python -m agent run` in a child process (kill -9, signals, the console).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from agent.config import Config, load, parse
from agent.daemon import Agent
from agent.rules import masterdata
from agent.rules.decision import Decision
from agent.rules.masterdata import MasterKind, MasterSource
from agent.service.requests import ApplyMasterData, ControlRequest, Reply
from agent.service.writer import Feedback, InboxItem
from agent.store import OutboxReader
from agent.uplink.client import Uplink
from drivers import RawScan

#: Section -> key -> value. Lists of tables (`[[scanner]]`) are lists of dicts.
ConfigDoc = dict[str, Any]


def agent_config(
    home: Path,
    *,
    mqtt_port: int = 1,
    device_id: str = "station-01",
    site: str = "site-01",
    op: str = "dispense",
    catalog: Path | None = None,
    serial_port: str | None = None,
    **sections: Mapping[str, Any] | list[dict[str, Any]],
) -> ConfigDoc:
    """An agent configuration under `home` with fast test defaults; `sections` override keys.

    `serial_port` adds one serial scanner named `counter`. Paths may be relative to `home`.
    """
    doc: ConfigDoc = {
        "device": {
            "id": device_id,
            "site": site,
            "data_dir": str(home / "data"),
            "key_dir": str(home / "keys"),
            "lang": "en",
        },
        "operation": {"mode": op},
        "mqtt": {
            "host": "127.0.0.1",
            "port": mqtt_port,
            "topic_prefix": "tracescan/v1",
            "keepalive": 5,
            "backoff_initial": 0.05,
            "backoff_max": 0.5,
        },
    }
    if catalog is not None:
        doc["catalog"] = {"path": str(catalog)}
    if serial_port is not None:
        doc["scanner"] = [{"type": "serial", "name": "counter", "port": serial_port}]
    for name, values in sections.items():
        # a list is an array of tables (`scanner=[{...}]`); a table's keys override the defaults
        doc[name] = list(values) if isinstance(values, list) else {**doc.get(name, {}), **values}
    return doc


def _toml_value(value: object) -> str:
    if isinstance(value, Path):
        value = str(value)
    # JSON strings, numbers, booleans and arrays of them are valid TOML values.
    return json.dumps(value)


def toml_text(doc: ConfigDoc) -> str:
    """The TOML text of a config dict (tables and arrays of tables of plain values)."""
    lines: list[str] = []
    for section, body in doc.items():
        tables = body if isinstance(body, list) else [body]
        for table in tables:
            lines.append(f"[[{section}]]" if isinstance(body, list) else f"[{section}]")
            lines += [f"{k} = {_toml_value(v)}" for k, v in table.items()]
            lines.append("")
    return "\n".join(lines)


def write_config(path: Path, doc: ConfigDoc) -> Path:
    """Write `doc` as a TOML file; returns `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(toml_text(doc), encoding="utf-8")
    return path


def load_config(home: Path, doc: ConfigDoc) -> Config:
    """`doc` parsed as the agent would, relative paths against `home`."""
    return parse(doc, home)


def config_file(home: Path, **kwargs: Any) -> Path:
    """`agent_config(home, **kwargs)` written to `home/agent.toml`."""
    return write_config(home / "agent.toml", agent_config(home, **kwargs))


def wait_until(predicate: Callable[[], bool], timeout: float = 20.0, step: float = 0.05) -> bool:
    """Poll `predicate` every `step` seconds until it holds; its last value after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


class Collect:
    """A feedback output that keeps what the worker would be told."""

    def __init__(self) -> None:
        self.seen: list[tuple[RawScan, Decision, int | None]] = []
        self.notes: list[str] = []

    def decided(self, scan: RawScan, decision: Decision, seq: int | None) -> None:
        """Keep the decision."""
        self.seen.append((scan, decision, seq))

    def note(self, scan: RawScan, text: str) -> None:
        """Keep the note (a command applied, a double read absorbed)."""
        self.notes.append(text)
        self.seen.append(
            (scan, Decision(scan.text, True, "unknown", "unknown", None, scan.text), None)
        )

    def last(self) -> Decision:
        """The latest decision."""
        return self.seen[-1][1]

    def confirmed(self) -> list[tuple[str, int]]:
        """(code, seq) of every scan the worker was told was recorded."""
        return [(d.text, seq) for _, d, seq in self.seen if d.accepted and seq is not None]


class InProcessAgent:
    """`agent.daemon.Agent` in this process, without scanners, fed by the test.

    Synchronous (the default): `scan()`, `process()` and `request()` decide and commit on the
    calling thread, which is then the store's only writer. Threaded (`threaded=True`): the
    agent is built on a writer thread that commits the scans given to `feed()` and the
    uplink's PUBACK notices, and `start()` also starts the uplink, as the daemon does.
    """

    def __init__(
        self,
        config: Config,
        *,
        feedback: Sequence[Feedback] = (),
        clock: float | None = None,
        threaded: bool = False,
    ) -> None:
        self.config = config
        self.collect = Collect()
        self._feedback = [self.collect, *feedback]
        self.clock = clock
        self._agent: Agent | None = None
        self._batches: queue.Queue[list[InboxItem]] = queue.Queue()
        self._ready = threading.Event()
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None
        if threaded:
            self._thread = threading.Thread(target=self._write, name="writer", daemon=True)
            self._thread.start()
            assert self._ready.wait(10), "agent did not start"
        else:
            self._agent = Agent(config, feedback=self._feedback)

    @property
    def agent(self) -> Agent:
        """The composed daemon."""
        assert self._agent is not None, "agent not built"
        return self._agent

    @property
    def uplink(self) -> Uplink:
        """The agent's uplink."""
        return self.agent.uplink

    # --- synchronous use -------------------------------------------------------------------

    def now(self, gap: float = 1.0) -> float:
        """The time of the next scan: the test's clock advanced by `gap`, or the real time."""
        if self.clock is None:
            return time.time()
        self.clock += gap
        return self.clock

    def scan(self, text: str, source: str = "s1", gap: float = 1.0) -> Decision:
        """One scan, decided and committed; what the worker is told. With the test's clock,
        the scan's monotonic time moves with it (double reads are told apart by it)."""
        at = self.now(gap)
        mono = at if self.clock is not None else time.monotonic()
        self.process([RawScan(text, source, at, mono=mono)])
        return self.collect.last()

    def process(self, items: list[InboxItem]) -> None:
        """Decide and commit `items` as one batch on this thread."""
        self.agent.writer.process(items)

    def request(self, req: ControlRequest) -> Reply:
        """Apply a control request and return its committed reply."""
        self.process([req])
        return req.reply.result(1)

    def master(
        self, kind: MasterKind, document: str | Mapping[str, Any], source: MasterSource = "central"
    ) -> Reply:
        """Parse a master-data document (JSON text or object, with its `version`) as the gate
        would and apply it as coming from `source`; `MasterDataError` if it does not parse."""
        text = document if isinstance(document, str) else json.dumps(document)
        value = masterdata.parse(kind, text, f"{kind} from the test")
        return self.request(ApplyMasterData(value=value, source=source, origin="test"))

    def records(self, topic: str) -> list[dict[str, Any]]:
        """Every unsent record of `topic`, decrypted, in order."""
        reader = OutboxReader(self.config.device.data_dir, self.agent.sealer)
        try:
            return [json.loads(r.payload) for r in reader.unsent(0, 1 << 30) if r.topic == topic]
        finally:
            reader.close()

    # --- threaded use ----------------------------------------------------------------------

    def start(self) -> InProcessAgent:
        """Start the uplink (threaded mode)."""
        self.agent.uplink.start()
        return self

    def feed(self, codes: list[str], batch: int = 100, source: str = "test") -> None:
        """Queue scans for the writer thread, `batch` per transaction (threaded mode)."""
        for i in range(0, len(codes), batch):
            now = self.now(0.0)
            self._batches.put([RawScan(c, source, now) for c in codes[i : i + batch]])

    def pending(self) -> int:
        """Scan batches not yet committed (threaded mode)."""
        return self._batches.qsize()

    def _write(self) -> None:
        agent = self._agent = Agent(self.config, feedback=self._feedback)
        self._ready.set()
        try:
            while True:
                items: list[InboxItem] = []
                with contextlib.suppress(queue.Empty):
                    items.extend(self._batches.get(timeout=0.02))
                while True:
                    try:
                        items.append(agent.writer.inbox.get_nowait())
                    except queue.Empty:
                        break
                if items:
                    agent.writer.process(items)
                elif self._halt.is_set():
                    break
        finally:
            agent.close()

    def close(self) -> None:
        """Stop as on SIGTERM: the uplink says goodbye, the last PUBACKs commit, the store closes."""
        if self._agent is None:
            return
        if self._thread is None:
            self._agent.close()
            return
        self._agent.stop.set()
        if self._agent.uplink.is_alive():
            self._agent.uplink.finish(5)
        self._halt.set()
        self._thread.join(10)


class AgentProcess:
    """`python -m agent run` in a child process; stdout (worker feedback) is collected."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.lines: list[str] = []
        self.stderr: list[str] = []
        self.proc: subprocess.Popen[str] | None = None
        self._cond = threading.Condition()
        self._pumps: list[threading.Thread] = []

    def start(self) -> AgentProcess:
        """Launch the agent."""
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "agent", "run", "--config", str(self.config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines = []
        self.stderr = []
        self._pumps = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, self.lines), daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stderr, self.stderr), daemon=True),
        ]
        for t in self._pumps:
            t.start()
        return self

    def _reap(self) -> None:
        for t in self._pumps:
            t.join(5)

    def _pump(self, stream: Any, into: list[str]) -> None:
        with stream:
            for line in stream:
                with self._cond:
                    into.append(line.rstrip("\n"))
                    self._cond.notify_all()

    def api_ready(self, timeout: float = 20.0) -> bool:
        """Wait until the local API listens (its socket file exists a moment before that)."""
        return self.wait_for(
            lambda a: any("local API: listening" in ln for ln in a.stderr), timeout
        )

    def confirmed(self) -> list[str]:
        """Feedback lines of accepted scans."""
        with self._cond:
            return [ln for ln in self.lines if ln.startswith("✔")]

    def refused(self) -> list[str]:
        """Feedback lines of refused scans."""
        with self._cond:
            return [ln for ln in self.lines if ln.startswith("✘")]

    def wait_for(self, predicate: Callable[[AgentProcess], bool], timeout: float = 20.0) -> bool:
        """Wait until `predicate(self)` holds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.1))
        return True

    def terminate(self, timeout: float = 10.0) -> int:
        """SIGTERM and wait; returns the exit status."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        status = self.proc.wait(timeout)
        self._reap()
        return status

    def kill9(self) -> None:
        """SIGKILL: the power-cut stand-in."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)
        self._reap()

    def stop(self) -> None:
        """Make sure the process is gone."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if self.proc:
            self._reap()


__all__ = [
    "AgentProcess",
    "Collect",
    "ConfigDoc",
    "InProcessAgent",
    "agent_config",
    "config_file",
    "load",
    "load_config",
    "toml_text",
    "write_config",
]
