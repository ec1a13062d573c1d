"""Real parts for the uplink tests: an in-process agent, a PKI, a TLS broker, subscribers."""

from __future__ import annotations

import contextlib
import json
import queue
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent.config import Config, load
from agent.daemon import Agent
from agent.uplink import pki
from drivers import RawScan
from hardware_sim.broker import LocalBroker
from hardware_sim.subscriber import Received, Recorder

REPO = Path(__file__).resolve().parents[2]
CENTRAL_CONF = REPO / "config" / "mosquitto" / "central.conf"
ACL = REPO / "config" / "mosquitto" / "acl"
SHIPPED_PKI_DIR = "/etc/mosquitto/tracescan/"
SITE = "site-01"

CONFIG = """\
[device]
id = "{device}"
site = "{site}"
data_dir = "{data_dir}"
key_dir = "{key_dir}"
lang = "en"

[operation]
mode = "dispense"

[mqtt]
host = "127.0.0.1"
port = {port}
topic_prefix = "tracescan/v1"
{mqtt}
"""


def agent_config(
    home: Path, port: int, *, device: str = "dev-a", site: str = SITE, **mqtt: object
) -> Config:
    """Write and load an agent config under `home`; `mqtt` keys override the fast defaults."""
    settings: dict[str, object] = {"keepalive": 5, "backoff_initial": 0.05, "backoff_max": 0.5}
    settings.update(mqtt)
    lines = "\n".join(
        f"{k} = {json.dumps(str(v) if isinstance(v, Path) else v)}" for k, v in settings.items()
    )
    home.mkdir(parents=True, exist_ok=True)
    path = home / "agent.toml"
    path.write_text(
        CONFIG.format(
            device=device,
            site=site,
            data_dir=home / "data",
            key_dir=home / "keys",
            port=port,
            mqtt=lines,
        )
    )
    return load(path)


class DrivenAgent:
    """`agent.daemon.Agent` without scanners; scans are fed in batches on its writer thread.

    The writer thread is the store's only writer, as in `Agent.run`: it constructs the agent,
    commits scan batches and the uplink's PUBACK notices, and closes the store at the end.
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        self.agent: Agent | None = None
        self._batches: queue.Queue[list[RawScan]] = queue.Queue()
        self._ready = threading.Event()
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._write, name="writer", daemon=True)

    def start(self) -> DrivenAgent:
        """Open the store on the writer thread and start the uplink."""
        self._thread.start()
        assert self._ready.wait(10), "agent did not start"
        assert self.agent is not None
        self.agent.uplink.start()
        return self

    @property
    def uplink(self):  # type: ignore[no-untyped-def]
        """The agent's uplink."""
        assert self.agent is not None
        return self.agent.uplink

    def scan(self, codes: list[str], batch: int = 100) -> None:
        """Queue scans for the writer thread, `batch` per transaction."""
        for i in range(0, len(codes), batch):
            now = time.time()
            self._batches.put([RawScan(c, "test", now) for c in codes[i : i + batch]])

    def pending(self) -> int:
        """Scan batches not yet committed."""
        return self._batches.qsize()

    def _write(self) -> None:
        agent = Agent(self.config, feedback=[])
        self.agent = agent
        self._ready.set()
        try:
            while True:
                items: list[RawScan | object] = []
                with contextlib.suppress(queue.Empty):
                    items.extend(self._batches.get(timeout=0.02))
                while True:
                    try:
                        items.append(agent.writer.inbox.get_nowait())
                    except queue.Empty:
                        break
                if items:
                    agent.writer.process(items)  # type: ignore[arg-type]
                elif self._halt.is_set():
                    break
        finally:
            agent.close()

    def stop(self) -> None:
        """SIGTERM-like: stop the uplink (goodbye), commit the last PUBACKs, close the store."""
        if self.agent is None:
            return
        self.agent.stop.set()
        if self.agent.uplink.is_alive():
            self.agent.uplink.finish(5)
        self._halt.set()
        self._thread.join(10)


@pytest.fixture
def driven() -> Iterator[Callable[[Config], DrivenAgent]]:
    """Start in-process agents; all are stopped at the end of the test."""
    made: list[DrivenAgent] = []

    def make(config: Config) -> DrivenAgent:
        d = DrivenAgent(config).start()
        made.append(d)
        return d

    yield make
    for d in made:
        d.stop()


def events_by_seq(messages: list[Received]) -> dict[int, bytes]:
    """seq -> payload after dropping byte-identical duplicates; a conflicting duplicate fails."""
    seen: dict[int, bytes] = {}
    for m in messages:
        if not m.topic.endswith("/event"):
            continue
        seq = json.loads(m.payload)["seq"]
        if seq in seen:
            assert seen[seq] == m.payload, f"seq {seq} re-sent with different content"
        seen[seq] = m.payload
    return seen


# --- PKI and the central broker --------------------------------------------------------------


class Pki:
    """A CA with a broker certificate, device certificates on demand and a backend client."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        pki.create_ca(directory, "test CA")
        pki.issue_broker(directory)
        self.backend = pki.issue_client(directory, "backend")

    @property
    def ca(self) -> Path:
        """The CA certificate."""
        return self.dir / "ca.crt"

    def device(self, device: str, site: str = SITE) -> pki.Issued:
        """A device certificate (CN = site/device)."""
        return pki.issue_device(self.dir, site, device)


@pytest.fixture
def test_pki(tmp_path: Path) -> Pki:
    """A fresh PKI made with `agent.uplink.pki`, as `tracescan pki` would."""
    return Pki(tmp_path / "pki")


def central_extra(pki_dir: Path) -> str:
    """`config/mosquitto/central.conf` as LocalBroker extra lines: the shipped TLS and ACL settings.

    LocalBroker writes its own `listener` (loopback, free port) and persistence lines first; the
    shipped listener settings that follow apply to it. Paths point at the test's PKI; the ACL
    is the shipped file itself.
    """
    keep: list[str] = []
    for line in CENTRAL_CONF.read_text().splitlines():
        word = line.split(" ", 1)[0]
        if word in {"listener", "persistence", "persistence_location", "autosave_interval"}:
            continue
        if word == "acl_file":
            keep.append(f"acl_file {ACL}")
            continue
        keep.append(line.replace(SHIPPED_PKI_DIR, f"{pki_dir}/"))
    return "\n".join(keep)


@pytest.fixture
def tls_broker(tmp_path: Path, test_pki: Pki) -> Iterator[LocalBroker]:
    """mosquitto configured as the shipped central broker (mTLS, identity from CN, ACL)."""
    workdir = tmp_path / "broker"
    workdir.mkdir()
    b = LocalBroker(workdir=workdir, persistence=True, extra=central_extra(test_pki.dir)).start()
    yield b
    b.close()


def tls_context(ca: Path, cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
    """A client TLS context as the agent builds it."""
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert and key:
        ctx.load_cert_chain(str(cert), str(key))
    return ctx


class TlsRecorder(Recorder):
    """A backend subscriber over mutual TLS (the `backend` certificate); records in order."""

    def __init__(self, port: int, pki_: Pki, pattern: str = "tracescan/v1/#") -> None:
        ctx = tls_context(pki_.ca, pki_.backend.cert, pki_.backend.key)
        super().__init__("127.0.0.1", port, pattern, tls=ctx)


@pytest.fixture
def backend(tls_broker: LocalBroker, test_pki: Pki) -> Iterator[TlsRecorder]:
    """The backend consumer, subscribed to every device over mTLS."""
    r = TlsRecorder(tls_broker.port, test_pki)
    yield r
    r.close()


@pytest.fixture
def plain_recorder(broker: LocalBroker) -> Iterator[Recorder]:
    """A subscriber on the plain test broker (the shared `broker` fixture)."""
    r = Recorder("127.0.0.1", broker.port, "tracescan/v1/#")
    yield r
    r.close()
