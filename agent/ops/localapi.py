"""The local API: POS/HIS software on the same machine takes part over a Unix socket.

JSON lines both ways: one request object per line, one reply object per line (with the
request's `id` echoed when given). A `subscribe` request turns the connection into a stream of
decision and note objects, one per line, until the client hangs up. The socket is 0660 and
belongs to the `tracescan` group when that group exists, so adding a POS user to the group
is the whole access control. See README "Local API" for the protocol with examples.

Threads: one per connection (a handful at most). Nothing here touches the store's writer
connection: the API depends only on a `ControlPort` (the writer's inbox): control requests
are parsed into typed, validated requests here and run on the writer thread; scans are
submitted; `status` reads the store through its own read-only connection.
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
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from agent.ops.feedback import HeldProbe, signal_of
from agent.rules.decision import Decision
from agent.rules.limits import JsonLimits, LimitError, load_json
from agent.rules.operations import OPERATIONS, is_operation
from agent.rules.receipt import receipt_text
from agent.service.contexts import valid_doc
from agent.service.requests import (
    ALL_SOURCES,
    Acknowledge,
    ControlPort,
    ControlRequest,
    Counters,
    EndDocument,
    ListContexts,
    SetMode,
    Undo,
)
from drivers import RawScan

if TYPE_CHECKING:
    from agent.ops.metrics import MetricsEndpoint

log = logging.getLogger(__name__)

SOCKET_NAME: Final = "api.sock"
API_SOURCE: Final = "api"  # the default scanner source of scans submitted over the API
_SUBSCRIBER_QUEUE: Final = 1000  # a subscriber this far behind is dropped, never waited for
_SUBMIT_TIMEOUT: Final = 5.0
_MAX_LINE: Final = 64 * 1024
_MAX_SOURCE: Final = 64
_MAX_TEXT: Final = 4096  # a scan submitted over the API: as long as a serial line may be
_REQUEST_LIMITS: Final = JsonLimits(max_bytes=_MAX_LINE, max_depth=4, max_items=64)


class ApiError(Exception):
    """The daemon's API could not be reached or answered with an error."""


class BadRequest(ValueError):
    """A request field is missing, of the wrong type or out of bounds (an error reply)."""


def _source(fields: dict[str, Any], known: frozenset[str], default: str = ALL_SOURCES) -> str:
    value = fields.get("source")
    if value is None or value == "":
        return default
    if not isinstance(value, str) or len(value) > _MAX_SOURCE or not value.isprintable():
        raise BadRequest(f"'source' must be a scanner name of at most {_MAX_SOURCE} characters")
    if value not in known:
        # A made-up source would get a context of its own: memory nobody bounds, and a
        # "switched" scanner that does not exist.
        names = ", ".join(sorted(known))
        raise BadRequest(f"'source' {value!r} is no scanner of this station (one of {names})")
    return value


def _doc(value: object, *, allow_clear: bool) -> str:
    if allow_clear and value == "":
        return ""
    if not valid_doc(value):
        raise BadRequest("'doc' must be a document id of 1-64 printable characters")
    return value


def parse_control(
    cmd: str, fields: dict[str, Any], sources: frozenset[str] = frozenset({ALL_SOURCES})
) -> ControlRequest | None:
    """The typed request for `cmd` (None when `cmd` is not a control request); `sources` are
    the names a request may address (the scanners, the API's own, and `*` for all).

    Raises `BadRequest` naming the field at fault: nothing unvalidated reaches the writer.
    """
    if cmd == "mode":
        op = fields.get("op")
        if op is not None and not is_operation(op):
            raise BadRequest(f"unknown operation {op!r} (one of {', '.join(OPERATIONS)})")
        doc = fields.get("doc")
        return SetMode(
            source=_source(fields, sources),
            op=op,
            doc=None if doc is None else _doc(doc, allow_clear=True),
        )
    if cmd == "end":
        return EndDocument(source=_source(fields, sources))
    if cmd == "undo":
        return Undo(source=_source(fields, sources))
    if cmd == "ack":
        return Acknowledge(source=_source(fields, sources))
    if cmd == "contexts":
        return ListContexts()
    if cmd == "counters":
        return Counters()
    return None


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
    clients = 0
    clients_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve a connection on its own thread, unless `[api] max_clients` are connected: a
        flood of idle connections must not take the file descriptors the uplink needs."""
        with self.clients_lock:
            full = self.clients >= self.api.max_clients
            if not full:
                self.clients += 1
        if full:
            log.warning("local API: %d clients connected; one more refused", self.api.max_clients)
            with contextlib.suppress(OSError):
                request.sendall(b'{"ok": false, "error": "too many API clients connected"}\n')
                request.shutdown(socket.SHUT_RDWR)
            request.close()  # not close_request(): this one never took a place
            return
        super().process_request(request, client_address)

    def close_request(self, request: Any) -> None:
        """A connection ended: its place is free."""
        with self.clients_lock:
            self.clients -= 1
        super().close_request(request)


class _RequestBudget:
    """Requests a connection may send: `RATE` a second, in bursts of up to `BURST`."""

    RATE: Final = 50.0
    BURST: Final = 100.0

    def __init__(self) -> None:
        self.tokens = self.BURST
        self.at = time.monotonic()

    def take(self) -> bool:
        """One request's worth, if the connection has it left."""
        now = time.monotonic()
        self.tokens = min(self.BURST, self.tokens + (now - self.at) * self.RATE)
        self.at = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


class _Connection(socketserver.StreamRequestHandler):
    """One client: requests in, replies out; `subscribe` switches to streaming."""

    server: _Server

    def setup(self) -> None:
        """A request connection silent for `[api] idle_timeout` is closed."""
        super().setup()
        self.connection.settimeout(self.server.api.idle_timeout)

    def handle(self) -> None:
        api = self.server.api
        budget = _RequestBudget()
        while not api.closing.is_set():
            try:
                line = self.rfile.readline(_MAX_LINE)
            except OSError:  # idle past the timeout, or the client went away
                return
            if not line:
                return
            if not line.strip():
                continue
            if not budget.take():
                self._send({"ok": False, "error": "too many requests: slow down"})
                continue
            try:
                request = load_json(line, _REQUEST_LIMITS)
            except LimitError as exc:
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
        self,
        port: ControlPort,
        path: Path,
        *,
        lang: str,
        held: HeldProbe,
        status: Callable[[], dict[str, Any]],
        receipts: Callable[[str], list[str]],
        scanners: Iterable[str] = (),
        api_sources: Iterable[str] = (API_SOURCE,),
        max_clients: int = 16,
        idle_timeout: float = 300.0,
        group: str = "tracescan",
        prometheus_port: int = 0,
    ) -> None:
        self.port = port
        self.path = path
        self.group = group
        self.status = status
        self.receipts = receipts
        self.lang = lang
        self.max_clients = max_clients
        self.idle_timeout = idle_timeout
        #: names a scan submitted over the API may carry (the first is the default)
        self.api_sources = tuple(api_sources) or (API_SOURCE,)
        #: names a control request may address: every scanner, the API's own, and all
        self.sources = frozenset({*scanners, *self.api_sources, ALL_SOURCES})
        self.closing = threading.Event()
        self.feedback = ApiFeedback(lang, held)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.metrics: MetricsEndpoint | None = None
        if prometheus_port:
            from agent.ops.metrics import MetricsEndpoint  # noqa: PLC0415 - only when configured

            self.metrics = MetricsEndpoint(prometheus_port, status)

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
        cmd = request.get("cmd")
        fields = {k: v for k, v in request.items() if k not in ("cmd", "id", "timeout")}
        try:
            if cmd == "submit":
                return self._submit(fields)
            if cmd == "status":
                return {"ok": True, **self.status()}
            if cmd == "receipt":
                return self._receipt(fields)
            req = parse_control(cmd, fields, self.sources) if isinstance(cmd, str) else None
            if req is not None:
                return self.port.request(req)
        except TimeoutError:
            return {"ok": False, "error": "the agent did not answer in time"}
        except BadRequest as exc:
            return {"ok": False, "error": f"bad request: {exc}"}
        return {"ok": False, "error": f"unknown cmd {str(cmd)[:32]!r}"}

    def _submit(self, fields: dict[str, Any]) -> dict[str, Any]:
        text = fields.get("text")
        if not isinstance(text, str) or len(text) > _MAX_TEXT:
            raise BadRequest(f"submit needs a string 'text' of at most {_MAX_TEXT} characters")
        known = self.sources - {ALL_SOURCES}
        scan = RawScan(text, _source(fields, known, self.api_sources[0]), time.time())
        waiter = self.feedback.expect(scan)
        self.port.submit(scan)
        try:
            result = waiter.result(_SUBMIT_TIMEOUT)
        except TimeoutError:
            self.feedback.forget(scan)
            raise
        return {"ok": True, **result}

    def _receipt(self, fields: dict[str, Any]) -> dict[str, Any]:
        """The trace codes recorded under a document (read off the writer thread)."""
        doc = _doc(fields.get("doc"), allow_clear=False)
        codes = self.receipts(doc)
        return {"ok": True, "doc": doc, "codes": codes, "text": receipt_text(doc, codes, self.lang)}


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
