"""The agent's configuration: every section and key, each stated once with its default and help.

Rules spanning several keys are each section's `check()`; rules on one value are its kind.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

from agent.config.kinds import (
    AnyPath,
    Bool,
    Choice,
    File,
    Int,
    Invalid,
    IsoDate,
    Kind,
    ListOf,
    Number,
    PrivateFile,
    Secret,
    Text,
    quoted,
)
from agent.config.schema import Problem, masked, setting, table, tables
from agent.rules.operations import DEFAULT_OPERATION, OPERATIONS

_NAME: Final = r"[A-Za-z0-9_-]{1,64}"  # device id, site and scanner names: parts of topics
#: Device ids refused in any case: `{prefix}/{site}/{id}/…` would be a site-wide topic (the
#: site's master data or commands) or be mistaken for a device's stream by a consumer parsing
#: topics. `tracescan pki device` refuses them too, so no certificate carries them.
RESERVED_DEVICE_IDS: Final = frozenset(
    {"master", "cmd", "event", "reject", "alert", "report", "status"}
)
_KEY_NAME: Final = r"[A-Za-z][A-Za-z0-9_]{0,31}"  # an evdev key name without KEY_, e.g. kp_enter
_ARGUMENT: Final = r"[^\x00]+"  # a program argument
_BARCODE_FORMATS: Final = ("code128", "datamatrix", "qr", "ean13", "ean8", "databar")
_PIXELS: Final = 99_999


class Rectangle(Kind[tuple[int, int, int, int]]):
    """`[x, y, width, height]` in camera pixels; an empty rectangle is refused."""

    def read(self, raw: object, base: Path) -> tuple[int, int, int, int]:
        if (
            not isinstance(raw, list)
            or len(raw) != 4
            or not all(type(v) is int and 0 <= v <= _PIXELS for v in raw)
            or raw[2] == 0
            or raw[3] == 0
        ):
            raise Invalid(
                "must be [x, y, width, height] with width, height > 0"
                f" (integers 0..{_PIXELS}), got {quoted(raw)}"
            )
        x, y, width, height = raw
        return (x, y, width, height)


class ScannerBytes(Text):
    """A string sent to a scanner as latin-1 bytes (`"\\u0007"` is BEL)."""

    def read(self, raw: object, base: Path) -> str:
        text = super().read(raw, base)
        if any(ord(c) > 0xFF for c in text):
            raise Invalid("only bytes \\u0000..\\u00ff can be sent to a scanner")
        return text


class PublicKey(Text):
    """An Ed25519 public key: base64 of its raw 32 bytes (`tracescan-central pubkey`)."""

    def read(self, raw: object, base: Path) -> str:
        text = super().read(raw, base)
        if not text:
            return text
        try:
            key = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise Invalid("must be base64 (the output of `tracescan-central pubkey`)") from None
        if len(key) != 32:
            raise Invalid(f"must be 32 bytes of Ed25519 public key, got {len(key)}")
        return text


def _real(path: Path) -> Path:
    """`path` with symlinks resolved, or made absolute by name when they cannot be (a loop)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return Path(os.path.abspath(path))


@dataclass(frozen=True, slots=True)
class DeviceConfig:
    """Who this device is and where it keeps its state."""

    id: str = setting("", Text(_NAME), "part of every topic and event", required=True)
    site: str = setting("", Text(_NAME), "part of every topic and event", required=True)
    data_dir: Path = setting(Path("/var/lib/tracescan"), AnyPath(), "the SQLite outbox (encrypted)")
    key_dir: Path = setting(
        Path("/etc/tracescan/keys"),
        AnyPath(),
        "signing, data and index keys; created 0700/0600; outside data_dir",
    )
    lang: str = setting("zh", Choice(("zh", "en")), "language of worker messages")

    def check(self) -> Iterator[Problem]:
        """Keys never live beside the data they protect; an id never names a site-wide topic."""
        if self.id.lower() in RESERVED_DEVICE_IDS:
            yield Problem(
                "id",
                f"{quoted(self.id)} is reserved (it would name a site-wide topic);"
                f" not one of {', '.join(sorted(RESERVED_DEVICE_IDS))}",
            )
        data, keys = _real(self.data_dir), _real(self.key_dir)
        if keys == data or keys.is_relative_to(data):
            yield Problem(
                "key_dir", "must be outside device.data_dir (keys never live beside the data)"
            )


@dataclass(frozen=True, slots=True)
class ScannerConfig:
    """One scanner source; which keys matter depends on `type`."""

    type: str = setting("serial", Choice(("serial", "hid", "camera")), "the kind of scanner")
    port: str = setting(
        "",
        Text(),
        "serial: device; hid: event device or vvvv:pppp; camera: index, file or URL",
        required=True,
    )
    # no name given: `{type}{index}`, see `named`
    name: str = setting("", Text(_NAME), "the scan's `source`; unique")
    baudrate: int = setting(9600, Int(300, 4_000_000), "serial: line speed")
    max_line: int = setting(
        4096, Int(64, 1 << 20), "serial: longer lines are cut and refused (bad_length)"
    )
    # serial: how a scan ends on the wire; a non-empty suffix wins over the terminator
    terminator: str = setting(
        "any", Choice(("any", "cr", "lf", "crlf")), "serial: the end of a scan; any = CR or LF"
    )
    suffix: str = setting("", Text(), "serial: exact bytes that end a scan; wins over terminator")
    # hid (keyboard wedge)
    layout: str = setting(
        "us",
        Choice(("us", "uk", "de", "fr", "calibrated")),
        "hid: the scanner's keyboard layout",
    )
    keymap_file: Path | None = setting(
        None, File(), "hid: learnt layout, required with layout = calibrated"
    )
    end_keys: tuple[str, ...] = setting(
        ("enter", "kp_enter", "tab"), ListOf(Text(_KEY_NAME)), "hid: keys that end a scan"
    )
    inter_key_timeout_ms: int = setting(
        50, Int(0, 10_000), "hid: a scan also ends after this pause (0 = never)"
    )
    gs_keys: tuple[str, ...] = setting((), ListOf(Text(_KEY_NAME)), "hid: keys standing for GS")
    grab: bool = setting(True, Bool(), "hid: exclusive grab, keys never reach the console")
    # camera
    decoder: str = setting("zxing", Choice(("zxing", "pyzbar")), "camera: the barcode decoder")
    formats: tuple[str, ...] = setting(
        ("code128", "datamatrix", "qr", "ean13"),
        ListOf(Choice(_BARCODE_FORMATS)),
        "camera: formats to look for (fewer = faster)",
    )
    roi: tuple[int, int, int, int] | None = setting(
        None, Rectangle(), "camera: [x, y, width, height] to decode; none = the whole frame"
    )
    downscale: float = setting(1.0, Number(0.05, 1.0), "camera: scale factor after the ROI")
    holdoff_ms: int = setting(
        1500, Int(0, 600_000), "camera: a code is scanned again only after this long out of view"
    )
    fps: float = setting(
        0.0, Number(0.0, 240.0), "camera: frames decoded per second at most (0 = every frame)"
    )

    def named(self, index: int) -> ScannerConfig:
        """This scanner, named after its type and position (`serial0`) when the file does not."""
        return self if self.name else replace(self, name=f"{self.type}{index}")

    def check(self) -> Iterator[Problem]:
        """A calibrated layout is a learnt keymap: the file must be given."""
        if self.layout == "calibrated" and self.keymap_file is None:
            yield Problem("keymap_file", 'required with layout = "calibrated"')


@dataclass(frozen=True, slots=True)
class OperationConfig:
    """The operation (and document) in force when the agent starts."""

    mode: str = setting(DEFAULT_OPERATION, Choice(OPERATIONS), "the operation in force")
    doc: str | None = setting(
        None, Text(empty_is_unset=True), "bill / prescription id carried in `doc`"
    )
    allowed: tuple[str, ...] = setting(
        OPERATIONS,
        ListOf(Choice(OPERATIONS)),
        "operations command barcodes and the API may switch to (a counter: dispense, sale, …)",
    )

    def check(self) -> Iterator[Problem]:
        """The operation the station starts in must be one it may be in."""
        if self.mode not in self.allowed:
            yield Problem("mode", f"{self.mode!r} is not in operation.allowed")


@dataclass(frozen=True, slots=True)
class MqttConfig:
    """How to reach the broker."""

    host: str = setting("127.0.0.1", Text(), "the broker's host name or address")
    port: int = setting(1883, Int(1, 65535), "the broker's port")
    topic_prefix: str = setting(
        "tracescan/v1", Text(r"[^#+\x00]+"), "topics are {prefix}/{site}/{device}/…"
    )
    client_id: str = setting(
        "", Text(), "MQTT client id; empty = {site}/{device}, the device certificate's CN"
    )
    # 2 s is for fault tests; field links use 30 or more
    keepalive: int = setting(30, Int(2, 3600), "seconds; a dead link is noticed after ~1.5×")
    protocol: str = setting("5", Choice(("5", "3.1.1")), "MQTT protocol version")
    inflight: int = setting(20, Int(1, 1000), "unacknowledged messages at most")
    backoff_initial: float = setting(
        0.5, Number(0.01, 60.0), "seconds; first reconnect delay (exponential, full jitter)"
    )
    backoff_max: float = setting(60.0, Number(0.1, 3600.0), "seconds; longest reconnect delay")
    username: str = setting("", Text(), "broker user name")
    password: str = setting("", Secret(), "broker password; masked whenever printed")
    ca_file: Path | None = setting(None, File(), "CA certificates that verify the broker")
    cert_file: Path | None = setting(None, File(), "client certificate (mutual TLS)")
    key_file: Path | None = setting(
        None,
        PrivateFile(),
        "client private key (mutual TLS); mode 0600 (refused if open to others)",
    )

    def check(self) -> Iterator[Problem]:
        """A client certificate is useless without its key, and the other way round."""
        if (self.cert_file is None) != (self.key_file is None):
            yield Problem("cert_file", "mutual TLS needs both cert_file and key_file")


@dataclass(frozen=True, slots=True)
class CentralConfig:
    """The central ledger this device reports to, pinned by its public key."""

    public_key: str = setting(
        "",
        PublicKey(),
        "the ledger's Ed25519 key (base64); master data and commands must be signed by it",
    )
    ack_timeout: float = setting(
        60.0, Number(1.0, 86400.0), "seconds; events not acknowledged by central are re-sent"
    )


@dataclass(frozen=True, slots=True)
class CatalogConfig:
    """Master data: packaging level per product code."""

    path: Path | None = setting(None, File(), "CSV code,level,ratio,name[,parts]")


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    """The stateful rules of the regime."""

    double_read_window: float = setting(
        1.5, Number(0.0, 60.0), "seconds; the same code from the same source is absorbed"
    )
    stop_the_line: bool = setting(
        True, Bool(), "回流 suspicion, blocked, case code at dispensing need an ack"
    )
    manifest_mode: str = setting(
        "refuse", Choice(("refuse", "warn")), "codes not in a receiving document's manifest"
    )
    max_case_units: int = setting(
        10_000, Int(1, 1_000_000), "units one case code may stand for; larger sets are refused"
    )


@dataclass(frozen=True, slots=True)
class MasterDataConfig:
    """Master-data files loaded at start (MQTT updates with a newer version replace them)."""

    relations: Path | None = setting(None, File(), "aggregation relations (CSV or JSON)")
    blocklist: Path | None = setting(None, File(), "blocked codes (CSV or JSON)")
    manifests: tuple[Path, ...] = setting((), ListOf(File()), "supplier manifests per document")
    allow_unsigned: bool = setting(
        False, Bool(), "without [central] public_key: accept unsigned master data over MQTT"
    )
    max_bytes: int = setting(
        4 * 1024 * 1024, Int(1024, 64 * 1024 * 1024), "largest master-data message or file"
    )


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """Bounds of the local buffer."""

    max_bytes: int = setting(
        512 * 1024 * 1024, Int(1 << 20, 1 << 40), "unsent records past this: scans refused"
    )
    retention_days: float = setting(
        30.0, Number(0.0, 3650.0), "sent records are kept this long for audit, then pruned"
    )


@dataclass(frozen=True, slots=True)
class FeedbackConfig:
    """Worker feedback outputs. Beeper strings are sent as latin-1 bytes ("\u0007" = BEL)."""

    console: bool = setting(True, Bool(), "the ✔/✘ line per scan on stdout")
    bell: bool = setting(False, Bool(), "terminal BEL on a refusal")
    beeper_accepted: str = setting("", ScannerBytes(), "bytes sent to the scanner on accepted")
    beeper_refused: str = setting("", ScannerBytes(), "bytes sent to the scanner on refused")
    beeper_held: str = setting("", ScannerBytes(), "bytes sent to the scanner when the line stops")
    sound_accepted: Path | None = setting(None, File(), "WAV played on accepted")
    sound_refused: Path | None = setting(None, File(), "WAV played on refused")
    sound_held: Path | None = setting(None, File(), "WAV played when the line stops")
    player: tuple[str, ...] = setting(
        ("aplay", "-q"), ListOf(Text(_ARGUMENT)), "the sound player's argv (the file is appended)"
    )


@dataclass(frozen=True, slots=True)
class ApiConfig:
    """The local API socket (and the optional Prometheus endpoint on localhost)."""

    enabled: bool = setting(True, Bool(), "serve the local API socket")
    socket: Path | None = setting(None, AnyPath(), "the socket's path; none = data_dir/api.sock")
    group: str = setting("tracescan", Text(), "the socket's group when it exists (mode 0660)")
    prometheus_port: int = setting(0, Int(0, 65535), "localhost metrics port; 0 = off")
    sources: tuple[str, ...] = setting(
        ("api",), ListOf(Text(_NAME)), "scanner names API clients may scan and switch as"
    )
    max_clients: int = setting(16, Int(1, 1024), "API connections at once; more are refused")
    idle_timeout: float = setting(
        300.0, Number(0.1, 86400.0), "seconds a connection may send nothing before it is closed"
    )


@dataclass(frozen=True, slots=True)
class StatusConfig:
    """Compliance figures: the upload deadline in working days, holidays, the rate window."""

    upload_deadline_days: int = setting(7, Int(1, 365), "working days an event may wait for upload")
    holidays: tuple[str, ...] = setting(
        (), ListOf(IsoDate()), "ISO dates that are not working days"
    )
    window_hours: float = setting(24.0, Number(0.1, 24.0 * 366), "window of counts and rates")


@dataclass(frozen=True, slots=True)
class Config:
    """The whole agent configuration."""

    device: DeviceConfig = table(DeviceConfig)
    scanners: tuple[ScannerConfig, ...] = tables(
        ScannerConfig, key="scanner", each=ScannerConfig.named
    )
    operation: OperationConfig = table(OperationConfig)
    mqtt: MqttConfig = table(MqttConfig)
    central: CentralConfig = table(CentralConfig)
    catalog: CatalogConfig = table(CatalogConfig)
    store: StoreConfig = table(StoreConfig)
    policy: PolicyConfig = table(PolicyConfig)
    masterdata: MasterDataConfig = table(MasterDataConfig)
    feedback: FeedbackConfig = table(FeedbackConfig)
    api: ApiConfig = table(ApiConfig)
    status: StatusConfig = table(StatusConfig)
    source: Path | None = None  # the file read, when read from a file

    def masked(self) -> dict[str, Any]:
        """The configuration as plain data with secrets replaced, safe to print or log."""
        return masked(self)

    def check(self) -> Iterator[Problem]:
        """Scanner names are the `source` of scans and of API requests: one scanner each; and
        what each scanner's driver would refuse (key names, keymap files, suffix bytes)."""
        names = [s.name for s in self.scanners]
        for dup in sorted({n for n in names if names.count(n) > 1}):
            yield Problem("scanner.name", f"{dup!r} is used by more than one scanner")
        # scanners.py translates these sections into driver options, so it imports this module
        from agent.config.scanners import scanner_problems  # noqa: PLC0415

        yield from scanner_problems(self.scanners)
