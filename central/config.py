"""The ledger's configuration: TOML, every key declared once with its default and help, every
error reported at once naming the key, exit 78 — the agent's declarative schema
(`agent.config.schema`) with the ledger's own sections.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

from agent.config.kinds import AnyPath, Choice, File, Int, Number, PrivateFile, Secret, Text
from agent.config.schema import EX_CONFIG, ConfigError, Problem, load_document, setting, table

__all__ = ["EX_CONFIG", "CentralConfig", "ConfigError", "DatabaseConfig", "LedgerConfig", "load"]

_NAME: Final = r"[A-Za-z0-9_-]{1,64}"
_PREFIX: Final = r"[^#+\x00$][^#+\x00]*"
_DSN: Final = r"postgres(ql)?://\S+|\S+=\S.*"


@dataclass(frozen=True, slots=True)
class CentralConfig:
    """The ledger itself: its key, topics, and how it batches and asks for gaps."""

    key_dir: Path = setting(
        Path("/etc/tracescan-central/keys"), AnyPath(), "the central signing key (0700/0600)"
    )
    topic_prefix: str = setting("tracescan/v1", Text(_PREFIX), "the devices' topic prefix")
    group: str = setting("ledger", Text(_NAME), "the MQTT 5 shared-subscription group")
    batch_max: int = setting(500, Int(1, 10_000), "messages per database transaction at most")
    max_payload: int = setting(
        64 * 1024, Int(1024, 16 << 20), "larger messages are kept apart as too_large"
    )
    resend_after: float = setting(
        2.0, Number(0.1, 3600.0), "seconds a gap stays open before cmd/resend asks for it"
    )
    resend_every: float = setting(
        30.0, Number(1.0, 86_400.0), "seconds between repeated requests for a gap still open"
    )
    session_expiry: int = setting(
        7 * 24 * 3600, Int(60, 0xFFFFFFFE), "seconds the broker keeps a stopped consumer's queue"
    )
    timezone: str = setting("UTC", Text(), "the day of a scan in `report` (IANA name)")

    def check(self) -> Iterator[Problem]:
        """The report's time zone must exist."""
        try:
            zoneinfo.ZoneInfo(self.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            yield Problem("timezone", f"{self.timezone!r} is not an IANA time zone")


@dataclass(frozen=True, slots=True)
class LedgerMqttConfig:
    """How a consumer reaches the broker (the agent's `[mqtt]` keys, for a service)."""

    host: str = setting("127.0.0.1", Text(), "the broker's host name or address")
    port: int = setting(1883, Int(1, 65535), "the broker's port")
    topic_prefix: str = setting(
        "", Text(_PREFIX, empty_is_unset=True), "if given, must equal central.topic_prefix"
    )
    client_id: str = setting("", Text(), "client id; empty = ledger-<slot>")
    keepalive: int = setting(30, Int(2, 3600), "seconds; a dead link is noticed after ~1.5×")
    protocol: str = setting("5", Choice(("5", "3.1.1")), "must be 5 (shared subscriptions)")
    inflight: int = setting(
        1000, Int(1, 65535), "MQTT 5 Receive Maximum: messages a batch may hold"
    )
    backoff_initial: float = setting(0.5, Number(0.01, 60.0), "seconds; first reconnect delay")
    backoff_max: float = setting(30.0, Number(0.1, 3600.0), "seconds; longest reconnect delay")
    username: str = setting("", Text(), "broker user name")
    password: str = setting("", Secret(), "broker password; masked whenever printed")
    ca_file: Path | None = setting(None, File(), "CA certificates that verify the broker")
    cert_file: Path | None = setting(None, File(), "client certificate (mutual TLS)")
    key_file: Path | None = setting(None, PrivateFile(), "client private key (0600)")

    def check(self) -> Iterator[Problem]:
        """The ledger reads shared subscriptions (MQTT 5) and needs both halves of mTLS."""
        if self.protocol != "5":
            yield Problem(
                "protocol", 'the ledger needs MQTT 5 (shared subscriptions); set "5" or remove it'
            )
        if (self.cert_file is None) != (self.key_file is None):
            yield Problem("cert_file", "mutual TLS needs both cert_file and key_file")


@dataclass(frozen=True, slots=True)
class DatabaseConfig:
    """Where the ledger lives."""

    dsn: str = setting(
        "postgresql://tracescan@127.0.0.1:5432/tracescan",
        Secret(_DSN),
        "PostgreSQL >= 13 connection string (may carry a password: masked)",
    )
    connect_timeout: int = setting(10, Int(1, 600), "seconds to reach the database")


@dataclass(frozen=True, slots=True)
class LedgerConfig:
    """The whole `tracescan-central` configuration."""

    central: CentralConfig = table(CentralConfig)
    mqtt: LedgerMqttConfig = table(LedgerMqttConfig)
    database: DatabaseConfig = table(DatabaseConfig)
    source: Path | None = None

    def check(self) -> Iterator[Problem]:
        """One topic prefix, stated in one place."""
        prefix = self.mqtt.topic_prefix
        if prefix and prefix != self.central.topic_prefix:
            yield Problem(
                "mqtt.topic_prefix",
                f"{prefix!r} differs from central.topic_prefix"
                f" {self.central.topic_prefix!r}; set it in one place",
            )


def load(path: Path) -> LedgerConfig:
    """Read and validate a TOML configuration file (`ConfigError` lists every problem)."""
    return replace(load_document(LedgerConfig, path), source=path)
