"""Typed agent configuration read from TOML, with every error reported at once.

Relative paths in the file are resolved against the directory that holds the file, so a
config and its data can be moved together. Secrets (`mqtt.password`) are masked whenever the
configuration is printed. The keys are declared once, in `agent.config.sections`; the
machinery that reads them is `agent.config.schema` (with value kinds in `agent.config.kinds`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from agent.config.schema import EX_CONFIG, ConfigError, load_document, read_document
from agent.config.sections import (
    ApiConfig,
    CatalogConfig,
    CentralConfig,
    Config,
    DeviceConfig,
    FeedbackConfig,
    MasterDataConfig,
    MqttConfig,
    OperationConfig,
    PolicyConfig,
    ScannerConfig,
    StatusConfig,
    StoreConfig,
)

__all__ = [
    "EX_CONFIG",
    "ApiConfig",
    "CatalogConfig",
    "CentralConfig",
    "Config",
    "ConfigError",
    "DeviceConfig",
    "FeedbackConfig",
    "MasterDataConfig",
    "MqttConfig",
    "OperationConfig",
    "PolicyConfig",
    "ScannerConfig",
    "StatusConfig",
    "StoreConfig",
    "load",
    "parse",
]


def parse(doc: Mapping[str, object], base: Path) -> Config:
    """Build a `Config` from parsed TOML, raising `ConfigError` listing every problem."""
    return read_document(Config, doc, base)


def load(path: Path) -> Config:
    """Read and validate a TOML configuration file."""
    return replace(load_document(Config, path), source=path)
