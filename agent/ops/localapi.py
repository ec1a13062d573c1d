"""The local API: POS/HIS software on the same machine takes part over a Unix socket.

JSON lines both ways: one request object per line, one reply object per line (with the
request's `id` echoed when given). A `subscribe` request turns the connection into a stream of
decision and note objects, one per line, until the client hangs up. The socket is 0660 and
belongs to the `tracescan` group when that group exists, so adding a POS user to the group
is the whole access control. See README "Local API" for the protocol with examples.

Threads: one per connection (a handful at most). Nothing here touches the store's writer
connection: control requests go through `Agent.request` (run on the writer thread), scans
through `Agent.submit`, and `status` opens its own read-only connection.
"""

from __future__ import annotations

import contextlib
import grp
import json
import logging
import os
import queue
import socket
import socketserver
import stat
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from agent.ops import status as status_mod
from agent.ops.feedback import HeldProbe, signal_of
from agent.rules.decision import Decision
from drivers import RawScan

if TYPE_CHECKING:
    from agent.daemon import Agent
    from agent.ops.metrics import MetricsEndpoint

log = logging.getLogger(__name__)

SOCKET_NAME: Final = "api.sock"
API_SOURCE: Final = "api"  # the default scanner source of scans submitted over the API
_SUBSCRIBER_QUEUE: Final = 1000  # a subscriber this far behind is dropped, never waited for
_SUBMIT_TIMEOUT: Final = 5.0
_MAX_LINE: Final = 64 * 1024
_CONTROL: Final = frozenset({"mode", "end", "undo", "ack", "contexts", "receipt", "counters"})


class ApiError(Exception):
    """The daemon's API could not be reached or answered with an error."""


def socket_path(data_dir: Path, configured: Path | None) -> Path:
    """Where the API socket lives: `[api] socket`, else `data_dir/api.sock`."""
    return configured or data_dir / SOCKET_NAME


def decision_message(
    scan: RawScan, decision: Decision, seq: int | None, held: bool, lang: str
) -> dict[str, Any]:
    """The object subscribers (and `submit`) receive for one decision."""
    return {
        "event": "decision",
        "source": scan.source,
        "time": scan.received_at,
        "accepted": decision.accepted,
        "signal": signal_of(decision, held),
        "reason": decision.reason,
        "message": decision.message(lang),
        "seq": seq,
        "code": decision.text,
        "kind": decision.kind,
        "level": decision.level,
        "fields": decision.fields,
    }


class ApiFeedback:
    """The feedback output behind `subscribe` and `submit`: fans decisions out to clients."""

    def __init__(self, lang: str, held: HeldProbe) -> None:
        self.lang = lang
        self.held = held
        self._lock = threading.Lock()
        self._subscribers: set[queue.Queue[dict[str, Any] | None]] = set()
        self._waiters: dict[int, Future[dict[str, Any]]] = {}

    def subscribe(self) -> queue.Queue[dict[str, Any] | None]:
        """A new subscriber's queue (None in it means: stop)."""
        q: queue.Queue[dict[str, Any] | None] = queue.Queue(_SUBSCRIBER_QUEUE)
        with self._lock:
            self._subscribers.add(q)
        return q

    def unsubscribe(self, q: queue.Queue[dict[str, Any] | None]) -> None:
        """Forget a subscriber."""
        with self._lock:
            self._subscribers.discard(q)

    def expect(self, scan: RawScan) -> Future[dict[str, Any]]:
        """A future resolved with the first decision (or note) about this very scan."""
        fut: Future[dict[str, Any]] = Future()
        with self._lock:
            self._waiters[id(scan)] = fut
        return fut

    def forget(self, scan: RawScan) -> None:
        """Drop a waiter that gave up."""
        with self._lock:
            self._waiters.pop(id(scan), None)

    def close(self) -> None:
        """Tell every subscriber to stop."""
        with self._lock:
            subs = list(self._subscribers)
            self._subscribers.clear()
        for q in subs:
            with contextlib.suppress(queue.Full):
                q.put_nowait(None)

    def decided(self, scan: RawScan, decision: Decision, seq: int | None) -> None:
        """Publish a decision (writer thread: never blocks)."""
        self._publish(
            scan, decision_message(scan, decision, seq, self.held(scan, decision), self.lang)
        )

    def note(self, scan: RawScan, text: str) -> None:
        """Publish a command acknowledgement."""
        self._publish(
            scan,
            {"event": "note", "source": scan.source, "time": scan.received_at, "text": text},
        )

    def _publish(self, scan: RawScan, message: dict[str, Any]) -> None:
        with self._lock:
            waiter = self._waiters.pop(id(scan), None)
            subs = list(self._subscribers)
        if waiter is not None and not waiter.done():
            waiter.set_result(message)
        for q in subs:
            try:
                q.put_nowait(message)
            except queue.Full:
                log.warning("local API: a subscriber fell %d messages behind; dropped", q.qsize())
                self.unsubscribe(q)


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    api: LocalApi


class _Connection(socketserver.StreamRequestHandler):
    """One client: requests in, replies out; `subscribe` switches to streaming."""

    server: _Server

    def handle(self) -> None:
        api = self.server.api
        while not api.closing.is_set():
            line = self.rfile.readline(_MAX_LINE)
            if not line:
                return
            if not line.strip():
                continue
            try:
                request = json.loads(line)
            except ValueError as exc:
                self._send({"ok": False, "error": f"bad request: {exc}"})
                continue
            if not isinstance(request, dict):
                self._send({"ok": False, "error": "bad request: not a JSON object"})
                continue
            if request.get("cmd") == "subscribe":
                self._send({"id": request.get("id"), "ok": True, "subscribed": True})
                self._stream(api)
                return
            reply = api.answer(request)
            if "id" in request:
                reply["id"] = request["id"]
            if not self._send(reply):
                return

    def _stream(self, api: LocalApi) -> None:
        q = api.feedback.subscribe()
        try:
            while not api.closing.is_set():
                try:
                    message = q.get(timeout=0.5)
                except queue.Empty:
                    continue
                if message is None or not self._send(message):
                    return
        finally:
            api.feedback.unsubscribe(q)

    def _send(self, obj: dict[str, Any]) -> bool:
        try:
            self.wfile.write(json.dumps(obj, ensure_ascii=False).encode() + b"\n")
            self.wfile.flush()
        except OSError:
            return False
        return True


class LocalApi:
    """The Unix-socket server of a running agent."""

    def __init__(
        self, agent: Agent, path: Path, group: str = "tracescan", prometheus_port: int = 0
    ) -> None:
        self.agent = agent
        self.path = path
        self.group = group
        self.closing = threading.Event()
        self.feedback = ApiFeedback(agent.config.device.lang, agent.stopped_line)
        # Kept for the daemon's life: each status call decrypts only the records new since the last.
        self._status = status_mod.StatusSource(agent.config.device.data_dir, agent.sealer)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.metrics: MetricsEndpoint | None = None
        if prometheus_port:
            from agent.ops.metrics import MetricsEndpoint  # noqa: PLC0415 - only when configured

            self.metrics = MetricsEndpoint(prometheus_port, self.status)

    def start(self) -> bool:
        """Bind the socket and serve in the background; False (logged) when it cannot."""
        try:
            _clear_stale(self.path)
            server = _Server(str(self.path), _Connection, bind_and_activate=False)
            try:
                old = os.umask(0o117)  # no window in which the socket is world-connectable
                try:
                    server.server_bind()
                finally:
                    os.umask(old)
                server.server_activate()
            except BaseException:
                server.server_close()
                raise
        except (OSError, ValueError) as exc:
            log.error("local API: cannot listen on %s (%s); API disabled", self.path, exc)
            return False
        self._grant_group()
        server.api = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.25}, name="local-api"
        )
        self._thread.start()
        log.info("local API: listening on %s", self.path)
        if self.metrics is not None:
            self.metrics.start()
        return True

    def close(self) -> None:
        """Stop serving and remove the socket."""
        self.closing.set()
        self.feedback.close()
        if self.metrics is not None:
            self.metrics.close()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join(2.0)
            with contextlib.suppress(OSError):
                self.path.unlink()
            self._server = None

    def _grant_group(self) -> None:
        """Socket group `tracescan` (when it exists), and a directory the group may traverse."""
        try:
            gid = grp.getgrnam(self.group).gr_gid
        except KeyError:
            return
        try:
            os.chown(self.path, -1, gid)
            parent = self.path.parent
            mode = stat.S_IMODE(parent.stat().st_mode)
            if not mode & stat.S_IXGRP:
                # Traverse only (0710): group members reach the socket but cannot list files.
                os.chown(parent, -1, gid)
                parent.chmod(mode | stat.S_IXGRP)
        except OSError as exc:
            log.warning("local API: cannot give group %s the socket (%s)", self.group, exc)

    def answer(self, request: dict[str, Any]) -> dict[str, Any]:
        """The reply to one request (runs on the connection's thread)."""
        cmd = str(request.get("cmd", ""))
        params = {k: v for k, v in request.items() if k not in ("cmd", "id", "timeout")}
        try:
            if cmd == "submit":
                return self._submit(params)
            if cmd == "status":
                return {"ok": True, **self.status()}
            if cmd in _CONTROL:
                return self.agent.request(cmd, **params)
        except TimeoutError:
            return {"ok": False, "error": "the agent did not answer in time"}
        except (TypeError, ValueError, KeyError) as exc:
            return {"ok": False, "error": f"bad request: {exc}"}
        return {"ok": False, "error": f"unknown cmd {cmd!r}"}

    def _submit(self, params: dict[str, Any]) -> dict[str, Any]:
        text = params.get("text")
        if not isinstance(text, str):
            raise TypeError("submit needs a string 'text'")
        scan = RawScan(text, str(params.get("source") or API_SOURCE), time.time())
        waiter = self.feedback.expect(scan)
        self.agent.submit(scan)
        try:
            result = waiter.result(_SUBMIT_TIMEOUT)
        except TimeoutError:
            self.feedback.forget(scan)
            raise
        return {"ok": True, **result}

    def status(self) -> dict[str, Any]:
        """Compliance figures from the store plus what only the running daemon knows."""
        cfg = self.agent.config
        st = self._status.gather(cfg.status, time.time())
        st.online = self.agent.uplink.connected.is_set()
        st.counters = self.agent.request("counters").get("counters", {})
        out = st.as_dict()
        out["contexts"] = self.agent.request("contexts").get("contexts", {})
        out["device"] = f"{cfg.device.site}/{cfg.device.id}"
        return out


def _clear_stale(path: Path) -> None:
    """Remove a socket left by a crashed agent; refuse to steal one that still answers."""
    if not path.exists() and not path.is_symlink():
        return
    if not stat.S_ISSOCK(path.lstat().st_mode):
        raise ValueError(f"{path} exists and is not a socket")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            path.unlink()
            return
    raise ValueError("another agent is already listening there")


class ApiClient:
    """A JSON-lines client for the CLI (`tracescan mode`, `ack`, `status`) and tests."""

    def __init__(self, path: Path, timeout: float = 10.0) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(str(path))
        except OSError as exc:
            self.sock.close()
            raise ApiError(f"no agent listening on {path} ({exc.strerror or exc})") from exc
        self._file = self.sock.makefile("rb")

    def call(self, cmd: str, **params: Any) -> dict[str, Any]:
        """Send one request and return its reply."""
        self.send({"cmd": cmd, **params})
        return self.receive()

    def send(self, request: dict[str, Any]) -> None:
        """Send one request line."""
        try:
            self.sock.sendall(json.dumps(request, ensure_ascii=False).encode() + b"\n")
        except OSError as exc:
            raise ApiError(f"the agent hung up ({exc})") from exc

    def receive(self) -> dict[str, Any]:
        """The next line from the agent."""
        try:
            line = self._file.readline()
        except OSError as exc:
            raise ApiError(f"no answer from the agent ({exc})") from exc
        if not line:
            raise ApiError("the agent closed the connection")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def close(self) -> None:
        """Hang up."""
        self._file.close()
        self.sock.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
