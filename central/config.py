"""The ledger's configuration: TOML, every error reported at once naming the key, exit 78.

Small on purpose: dataclasses and one loader built on the agent's section reader, so it can
move onto the agent's declarative schema when that lands. `[mqtt]` takes the agent's keys.
"""

from __future__ import annotations

import difflib
import re
import tomllib
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from agent.config import ConfigError, MqttConfig, _Section

DEFAULT_KEY_DIR: Final = Path("/etc/tracescan-central/keys")
DEFAULT_DSN: Final = "postgresql://tracescan@127.0.0.1:5432/tracescan"
#: The ledger takes what the broker hands it in batches; this many may be unacknowledged at
#: once (MQTT 5 Receive Maximum), so one batch can hold up to this many messages.
DEFAULT_RECEIVE_MAX: Final = 1000
_SECTIONS: Final = ("central", "mqtt", "database")
_GROUP: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
_PREFIX: Final = re.compile(r"[^#+\x00$][^#+\x00]*")


@dataclass(frozen=True, slots=True)
class CentralConfig:
    """The ledger itself: its key, topics, and how it batches and asks for gaps."""

    key_dir: Path = DEFAULT_KEY_DIR
    topic_prefix: str = "tracescan/v1"
    group: str = "ledger"  # the MQTT 5 shared-subscription group every consumer joins
    batch_max: int = 500  # messages per database transaction at most
    max_payload: int = 64 * 1024  # larger messages are kept apart as `too_large`
    resend_after: float = 2.0  # seconds a gap stays open before `cmd/resend` asks for it
    resend_every: float = 30.0  # seconds between repeated requests for a gap still open
    session_expiry: int = 7 * 24 * 3600  # how long the broker keeps a stopped consumer's queue
    timezone: str = "UTC"  # the day of a scan in `report`


@dataclass(frozen=True, slots=True)
class DatabaseConfig:
    """Where the ledger lives."""

    dsn: str = field(default=DEFAULT_DSN, repr=False)  # may carry a password
    connect_timeout: int = 10


@dataclass(frozen=True, slots=True)
class LedgerConfig:
    """The whole `tracescan-central` configuration."""

    central: CentralConfig
    mqtt: MqttConfig
    database: DatabaseConfig
    source: Path | None = None


def parse(doc: Mapping[str, object], base: Path) -> LedgerConfig:
    """Build a `LedgerConfig` from parsed TOML, raising `ConfigError` listing every problem."""
    problems: list[str] = []
    for k in doc:
        if k not in _SECTIONS:
            hint = difflib.get_close_matches(k, _SECTIONS, n=1)
            more = f" (did you mean {hint[0]!r}?)" if hint else ""
            problems.append(f"{k}: unknown section{more}")

    s = _Section("central", doc.get("central"), problems, base)
    central = CentralConfig(
        key_dir=s.path("key_dir", DEFAULT_KEY_DIR) or DEFAULT_KEY_DIR,
        topic_prefix=s.string("topic_prefix", "tracescan/v1", pattern=_PREFIX),
        group=s.string("group", "ledger", pattern=_GROUP),
        batch_max=s.integer("batch_max", 500, 1, 10_000),
        max_payload=s.integer("max_payload", 64 * 1024, 1024, 16 << 20),
        resend_after=s.number("resend_after", 2.0, 0.1, 3600.0),
        resend_every=s.number("resend_every", 30.0, 1.0, 86_400.0),
        session_expiry=s.integer("session_expiry", 7 * 24 * 3600, 60, 0xFFFFFFFE),
        timezone=s.string("timezone", "UTC"),
    )
    try:
        zoneinfo.ZoneInfo(central.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        problems.append(f"central.timezone: {central.timezone!r} is not an IANA time zone")
    s.finish()

    s = _Section("mqtt", doc.get("mqtt"), problems, base)
    mqtt = MqttConfig(
        host=s.string("host", "127.0.0.1"),
        port=s.integer("port", 1883, 1, 65535),
        topic_prefix=s.string("topic_prefix", central.topic_prefix, pattern=_PREFIX),
        client_id=s.string("client_id", ""),
        keepalive=s.integer("keepalive", 30, 2, 3600),
        protocol=s.choice("protocol", "5", ("5", "3.1.1")),
        inflight=s.integer("inflight", DEFAULT_RECEIVE_MAX, 1, 65535),
        backoff_initial=s.number("backoff_initial", 0.5, 0.01, 60.0),
        backoff_max=s.number("backoff_max", 30.0, 0.1, 3600.0),
        username=s.string("username", ""),
        password=s.string("password", ""),
        ca_file=s.existing_file("ca_file"),
        cert_file=s.existing_file("cert_file"),
        key_file=s.existing_file("key_file"),
    )
    if mqtt.protocol != "5":
        problems.append(
            'mqtt.protocol: the ledger needs MQTT 5 (shared subscriptions); set "5" or remove it'
        )
    if mqtt.topic_prefix != central.topic_prefix:
        problems.append(
            f"mqtt.topic_prefix: {mqtt.topic_prefix!r} differs from central.topic_prefix"
            f" {central.topic_prefix!r}; set it in one place"
        )
    if (mqtt.cert_file is None) != (mqtt.key_file is None):
        problems.append("mqtt.cert_file: mutual TLS needs both cert_file and key_file")
    s.finish()

    s = _Section("database", doc.get("database"), problems, base)
    database = DatabaseConfig(
        dsn=s.string("dsn", DEFAULT_DSN, pattern=re.compile(r"postgres(ql)?://\S+|\S+=\S.*")),
        connect_timeout=s.integer("connect_timeout", 10, 1, 600),
    )
    s.finish()

    if problems:
        raise ConfigError(problems)
    return LedgerConfig(central=central, mqtt=mqtt, database=database)


def load(path: Path) -> LedgerConfig:
    """Read and validate a TOML configuration file."""
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read ({exc.strerror})"]) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: not UTF-8 ({exc})"]) from exc
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: invalid TOML: {exc}"]) from exc
    config = parse(doc, path.resolve().parent)
    return LedgerConfig(config.central, config.mqtt, config.database, source=path)
