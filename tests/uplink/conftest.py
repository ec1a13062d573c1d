"""Real parts for the uplink tests: an in-process agent, a PKI, a TLS broker, subscribers."""

from __future__ import annotations

import json
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent.config import Config, load
from agent.uplink import pki
from hardware_sim.broker import LocalBroker
from hardware_sim.subscriber import Received, Recorder
from tests.harness import InProcessAgent, config_file

REPO = Path(__file__).resolve().parents[2]
CENTRAL_CONF = REPO / "config" / "mosquitto" / "central.conf"
ACL = REPO / "config" / "mosquitto" / "acl"
SHIPPED_PKI_DIR = "/etc/mosquitto/tracescan/"
SITE = "site-01"


def agent_config(home: Path, port: int, *, site: str = SITE, **mqtt: object) -> Config:
    """The harness's config for device `dev-a` (or `mqtt["device"]`) under `home` on broker
    `port`; the other `mqtt` keys override the [mqtt] section."""
    device = str(mqtt.pop("device", "dev-a"))
    return load(config_file(home, mqtt_port=port, device_id=device, site=site, mqtt=mqtt))


#: The `driven` fixture: start an in-process agent (writer thread and uplink) for a config.
Driven = Callable[[Config], InProcessAgent]


@pytest.fixture
def driven() -> Iterator[Driven]:
    """Start in-process agents with a writer thread and the uplink; all stop at the end."""
    made: list[InProcessAgent] = []

    def make(config: Config) -> InProcessAgent:
        d = InProcessAgent(config, threaded=True).start()
        made.append(d)
        return d

    yield make
    for d in made:
        d.close()


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
