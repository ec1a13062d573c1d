"""A TCP fault proxy between the agent and the broker: cuts, blackholes, latency, throttling.

`NetFault(target_port)` listens on a free loopback port and forwards every connection to
`127.0.0.1:target_port`. Faults are switched on command from any thread, or on a schedule
(`flap`): the network between a pharmacy and the central broker, in a test.

- `cut()`: abort every open connection now (both ends see a reset), like a Wi-Fi drop.
- `blackhole(True)`: keep sockets open but silently drop every byte both ways, new connections
  included: a dead NAT mapping or a mobile link that went silent. Only keepalive finds it.
- `refuse(True)`: accept new connections and close them at once: an outage where the
  agent's reconnect loop must back off instead of storming.
- `set_latency(s)`: add a one-way delay to each direction (bytes are delivered in order, the
  pipe keeps its throughput).
- `set_bandwidth(bytes_per_s)`: throttle each direction.
- `flap(lo, hi)`: cut all connections at random intervals uniform in [lo, hi] seconds.

The proxy runs an asyncio loop in its own thread; it only ever binds to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final, TypeVar

from hardware_sim.broker import free_port

_LOOPBACK: Final = "127.0.0.1"
_CHUNK: Final = 65536
_T = TypeVar("_T")


@dataclass(eq=False, slots=True)  # identity semantics: links live in a set
class _Link:
    """One proxied connection: the agent's side and the broker's side."""

    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def abort(self) -> None:
        for w in (self.client, self.upstream):
            w.transport.abort()


@dataclass(slots=True)
class FaultStats:
    """What the proxy did, for assertions."""

    accepted: int = 0
    cuts: int = 0
    refused: int = 0
    dropped_bytes: int = 0


class NetFault:
    """A loopback TCP proxy in front of `target_port` with switchable faults."""

    def __init__(self, target_port: int, listen_port: int | None = None) -> None:
        self.target_port = target_port
        self.port = listen_port or free_port()
        self.stats = FaultStats()
        self._blackhole = False
        self._refuse = False
        self._latency = 0.0
        self._bandwidth: float | None = None
        self._links: set[_Link] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="netfault", daemon=True)
        self._server: asyncio.Server | None = None
        self._flapper: asyncio.Task[None] | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> NetFault:
        """Start listening on 127.0.0.1:`port`."""
        self._thread.start()
        self._server = self._call(
            asyncio.start_server(self._accept, _LOOPBACK, self.port, reuse_address=True)
        )
        return self

    def close(self) -> None:
        """Abort every connection, stop listening and stop the loop thread."""
        if not self._thread.is_alive():
            self._loop.close()
            return
        self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def __enter__(self) -> NetFault:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- faults, callable from any thread ----------------------------------------------------

    def cut(self) -> int:
        """Abort every open connection now; returns how many were cut."""
        return self._call(self._cut())

    def blackhole(self, on: bool = True) -> None:
        """Drop every byte both ways on open and new connections (sockets stay open)."""
        self._blackhole = on

    def refuse(self, on: bool = True) -> None:
        """Close new connections right after accepting them (open ones are not touched)."""
        self._refuse = on

    def set_latency(self, seconds: float) -> None:
        """Add a one-way delay to each direction."""
        self._latency = max(0.0, seconds)

    def set_bandwidth(self, bytes_per_s: float | None) -> None:
        """Throttle each direction to `bytes_per_s` (None: unlimited)."""
        self._bandwidth = bytes_per_s if bytes_per_s and bytes_per_s > 0 else None

    def flap(self, lo: float, hi: float, seed: int | None = None) -> None:
        """Cut all connections at random intervals uniform in [lo, hi] s until `steady()`."""
        rng = random.Random(seed)

        async def flapping() -> None:
            while True:
                await asyncio.sleep(rng.uniform(lo, hi))
                await self._cut()

        async def begin() -> None:
            self._stop_flapping()
            self._flapper = asyncio.get_running_loop().create_task(flapping())

        self._call(begin())

    def steady(self) -> None:
        """Stop the scheduled cuts (other faults stay as they are)."""

        async def end() -> None:
            self._stop_flapping()

        self._call(end())

    def open_connections(self) -> int:
        """How many proxied connections are open right now."""

        async def count() -> int:
            return len(self._links)

        return self._call(count())

    # --- the loop thread ---------------------------------------------------------------------

    def _call(self, coro: Coroutine[Any, Any, _T]) -> _T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    def _stop_flapping(self) -> None:
        if self._flapper is not None:
            self._flapper.cancel()
            self._flapper = None

    async def _cut(self) -> int:
        links = list(self._links)
        for link in links:
            link.abort()
        self.stats.cuts += 1
        return len(links)

    async def _shutdown(self) -> None:
        self._stop_flapping()
        if self._server is not None:
            self._server.close()
        for link in list(self._links):
            link.abort()
        handlers = list(self._handlers)
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            await self._serve(reader, writer)
        finally:
            self._handlers.discard(task)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats.accepted += 1
        if self._refuse:
            self.stats.refused += 1
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(_LOOPBACK, self.target_port)
        except OSError:
            writer.transport.abort()
            return
        link = _Link(writer, up_writer)
        self._links.add(link)
        loop = asyncio.get_running_loop()
        try:
            link.tasks = [
                loop.create_task(self._pipe(reader, up_writer)),
                loop.create_task(self._pipe(up_reader, writer)),
            ]
            # Either direction ending (EOF, reset, cut) ends the whole connection.
            await asyncio.wait(link.tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            link.abort()
            for task in link.tasks:
                task.cancel()
            await asyncio.gather(*link.tasks, return_exceptions=True)
            self._links.discard(link)

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        """Copy one direction: read now, deliver after the latency, at the allowed rate."""
        queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
        deliver = asyncio.get_running_loop().create_task(self._deliver(queue, dst))
        try:
            while True:
                try:
                    data = await src.read(_CHUNK)
                except (ConnectionError, OSError):
                    break
                if not data:
                    break
                if self._blackhole:
                    self.stats.dropped_bytes += len(data)
                    continue
                queue.put_nowait((time.monotonic() + self._latency, data))
            queue.put_nowait(None)
            await deliver
        finally:
            if not deliver.done():
                deliver.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await deliver

    async def _deliver(
        self, queue: asyncio.Queue[tuple[float, bytes] | None], dst: asyncio.StreamWriter
    ) -> None:
        next_free = 0.0  # when the throttled pipe can take the next byte
        while (item := await queue.get()) is not None:
            due, data = item
            now = time.monotonic()
            if self._bandwidth is not None:
                next_free = max(next_free, now) + len(data) / self._bandwidth
                due = max(due, next_free)
            if due > now:
                await asyncio.sleep(due - now)
            if self._blackhole:  # switched on while the bytes were delayed
                self.stats.dropped_bytes += len(data)
                continue
            try:
                dst.write(data)
                await dst.drain()
            except (ConnectionError, OSError):
                return
