"""Typed agent configuration read from TOML, with every error reported at once.

Relative paths in the file are resolved against the directory that holds the file, so a
config and its data can be moved together. Secrets (`mqtt.password`) are masked whenever the
configuration is printed.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Final

from agent.rules.operations import DEFAULT_OPERATION, OPERATIONS

EX_CONFIG: Final = 78  # sysexits.h: configuration error

_DEVICE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
SCANNER_TYPES: Final = ("serial", "hid", "camera")
LANGS: Final = ("zh", "en")
DEFAULT_DATA_DIR: Final = Path("/var/lib/tracescan")
DEFAULT_KEY_DIR: Final = Path("/etc/tracescan/keys")
DEFAULT_MAX_BYTES: Final = 512 * 1024 * 1024
DEFAULT_RETENTION_DAYS: Final = 30.0


class ConfigError(Exception):
    """The configuration is invalid; `problems` holds one `key: what is wrong` line each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True, slots=True)
class DeviceConfig:
    """Who this device is and where it keeps its state."""

    id: str = ""
    site: str = ""
    data_dir: Path = DEFAULT_DATA_DIR
    key_dir: Path = DEFAULT_KEY_DIR
    lang: str = "zh"


@dataclass(frozen=True, slots=True)
class ScannerConfig:
    """One scanner source; which keys matter depends on `type`."""

    type: str = "serial"
    port: str = ""
    name: str = ""
    baudrate: int = 9600
    max_line: int = 4096
    # serial: how a scan ends on the wire; a non-empty suffix wins over the terminator
    terminator: str = "any"
    suffix: str = ""
    # hid (keyboard wedge)
    layout: str = "us"
    keymap_file: Path | None = None
    end_keys: tuple[str, ...] = ("enter", "kp_enter", "tab")
    inter_key_timeout_ms: int = 50
    gs_keys: tuple[str, ...] = ()
    grab: bool = True
    # camera
    decoder: str = "zxing"
    formats: tuple[str, ...] = ("code128", "datamatrix", "qr", "ean13")
    roi: tuple[int, int, int, int] | None = None
    downscale: float = 1.0
    holdoff_ms: int = 1500
    fps: float = 0.0


@dataclass(frozen=True, slots=True)
class OperationConfig:
    """The operation (and document) in force when the agent starts."""

    mode: str = DEFAULT_OPERATION
    doc: str | None = None


@dataclass(frozen=True, slots=True)
class MqttConfig:
    """How to reach the broker."""

    host: str = "127.0.0.1"
    port: int = 1883
    topic_prefix: str = "tracescan/v1"
    client_id: str = ""
    keepalive: int = 30
    protocol: str = "5"
    inflight: int = 20
    backoff_initial: float = 0.5
    backoff_max: float = 60.0
    username: str = ""
    password: str = field(default="", repr=False)
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None


@dataclass(frozen=True, slots=True)
class CatalogConfig:
    """Master data: packaging level per product code."""

    path: Path | None = None


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    """The stateful rules of the regime."""

    double_read_window: float = 1.5  # seconds; the same code from the same source is absorbed
    stop_the_line: bool = True  # 回流 suspicion, blocked, case code at dispensing need an ack
    manifest_mode: str = "refuse"  # codes not in a receiving document's manifest: refuse | warn


@dataclass(frozen=True, slots=True)
class MasterDataConfig:
    """Master-data files loaded at start (MQTT updates with a newer version replace them)."""

    relations: Path | None = None
    blocklist: Path | None = None
    manifests: tuple[Path, ...] = ()


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """Bounds of the local buffer."""

    max_bytes: int = DEFAULT_MAX_BYTES  # unsent records past this: scans refused (buffer_full)
    retention_days: float = (
        DEFAULT_RETENTION_DAYS  # sent records are kept this long for audit, then pruned
    )


# --- [feedback], [api], [status] (issue 8) ----------------------------------------------


@dataclass(frozen=True, slots=True)
class FeedbackConfig:
    """Worker feedback outputs. Beeper strings are sent as latin-1 bytes ("\u0007" = BEL)."""

    console: bool = True
    bell: bool = False
    beeper_accepted: str = ""
    beeper_refused: str = ""
    beeper_held: str = ""
    sound_accepted: Path | None = None
    sound_refused: Path | None = None
    sound_held: Path | None = None
    player: tuple[str, ...] = ("aplay", "-q")


@dataclass(frozen=True, slots=True)
class ApiConfig:
    """The local API socket (and the optional Prometheus endpoint on localhost)."""

    enabled: bool = True
    socket: Path | None = None  # default: data_dir/api.sock
    group: str = "tracescan"  # socket group when it exists (0660)
    prometheus_port: int = 0  # 0 = off


@dataclass(frozen=True, slots=True)
class StatusConfig:
    """Compliance figures: the upload deadline in working days, holidays, the rate window."""

    upload_deadline_days: int = 7
    holidays: tuple[str, ...] = ()  # ISO dates that are not working days
    window_hours: float = 24.0


@dataclass(frozen=True, slots=True)
class Config:
    """The whole agent configuration."""

    device: DeviceConfig
    scanners: tuple[ScannerConfig, ...]
    operation: OperationConfig
    mqtt: MqttConfig
    catalog: CatalogConfig
    store: StoreConfig = StoreConfig()
    policy: PolicyConfig = PolicyConfig()
    masterdata: MasterDataConfig = MasterDataConfig()
    feedback: FeedbackConfig = FeedbackConfig()
    api: ApiConfig = ApiConfig()
    status: StatusConfig = StatusConfig()
    source: Path | None = None

    def masked(self) -> dict[str, Any]:
        """The configuration as plain data with secrets replaced, safe to print or log."""
        out: dict[str, Any] = {}
        for section in (name for name in _SECTIONS if name != "scanner"):
            values = {
                f.name: _plain(getattr(getattr(self, section), f.name))
                for f in fields(getattr(self, section))
            }
            out[section] = values
        if self.mqtt.password:
            out["mqtt"]["password"] = "***"  # noqa: S105 - the mask itself
        out["scanner"] = [
            {f.name: _plain(getattr(s, f.name)) for f in fields(s)} for s in self.scanners
        ]
        return out


def _plain(value: object) -> object:
    return str(value) if isinstance(value, Path) else value


class _Section:
    """Reads one TOML table, remembering every problem instead of stopping at the first."""

    def __init__(self, name: str, table: object, problems: list[str], base: Path) -> None:
        self.name = name
        self.problems = problems
        self.base = base
        if table is None:
            table = {}
        if not isinstance(table, Mapping):
            problems.append(f"{name}: must be a table")
            table = {}
        self.table: Mapping[str, object] = table
        self.used: set[str] = set()

    def key(self, k: str) -> str:
        return f"{self.name}.{k}"

    def _get(self, k: str) -> object:
        self.used.add(k)
        return self.table.get(k)

    def string(
        self,
        k: str,
        default: str,
        *,
        pattern: re.Pattern[str] | None = None,
        required: bool = False,
    ) -> str:
        v = self._get(k)
        if v is None:
            if required:
                self.problems.append(f"{self.key(k)}: required")
            return default
        if not isinstance(v, str):
            self.problems.append(f"{self.key(k)}: must be a string, got {type(v).__name__}")
            return default
        if pattern is not None and not pattern.fullmatch(v):
            self.problems.append(f"{self.key(k)}: {v!r} must match {pattern.pattern}")
            return default
        return v

    def choice(self, k: str, default: str, options: tuple[str, ...]) -> str:
        v = self.string(k, default)
        if v not in options:
            self.problems.append(f"{self.key(k)}: {v!r} is not one of {', '.join(options)}")
            return default
        return v

    def integer(self, k: str, default: int, lo: int, hi: int) -> int:
        v = self._get(k)
        if v is None:
            return default
        if isinstance(v, bool) or not isinstance(v, int):
            self.problems.append(f"{self.key(k)}: must be an integer, got {type(v).__name__}")
            return default
        if not lo <= v <= hi:
            self.problems.append(f"{self.key(k)}: {v} is outside {lo}..{hi}")
            return default
        return v

    def number(self, k: str, default: float, lo: float, hi: float) -> float:
        v = self._get(k)
        if v is None:
            return default
        if isinstance(v, bool) or not isinstance(v, int | float):
            self.problems.append(f"{self.key(k)}: must be a number, got {type(v).__name__}")
            return default
        if not lo <= v <= hi:
            self.problems.append(f"{self.key(k)}: {v} is outside {lo}..{hi}")
            return default
        return float(v)

    def path(self, k: str, default: Path | None) -> Path | None:
        v = self._get(k)
        if v is None or v == "":
            return default
        if not isinstance(v, str):
            self.problems.append(f"{self.key(k)}: must be a path string, got {type(v).__name__}")
            return default
        p = Path(v).expanduser()
        return p if p.is_absolute() else (self.base / p)

    def boolean(self, k: str, default: bool) -> bool:
        v = self._get(k)
        if v is None:
            return default
        if not isinstance(v, bool):
            self.problems.append(f"{self.key(k)}: must be true or false, got {type(v).__name__}")
            return default
        return v

    def file_list(self, k: str) -> tuple[Path, ...]:
        v = self._get(k)
        if v is None:
            return ()
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            self.problems.append(f"{self.key(k)}: must be a list of file paths")
            return ()
        out = []
        for x in v:
            p = Path(x).expanduser()
            p = p if p.is_absolute() else self.base / p
            if not p.is_file():
                self.problems.append(f"{self.key(k)}: file {str(p)!r} does not exist")
            out.append(p)
        return tuple(out)

    def existing_file(self, k: str) -> Path | None:
        p = self.path(k, None)
        if p is not None and not p.is_file():
            self.problems.append(f"{self.key(k)}: file {str(p)!r} does not exist")
        return p

    def finish(self) -> None:
        known = sorted(self.used)
        for k in self.table:
            if k not in self.used:
                hint = difflib.get_close_matches(k, known, n=1)
                more = f" (did you mean {hint[0]!r}?)" if hint else ""
                self.problems.append(f"{self.key(k)}: unknown key{more}")


_KEY_NAME: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,31}")
_FORMAT_NAME: Final = re.compile(r"code128|datamatrix|qr|ean13|ean8|databar")
_ROI_ITEM: Final = re.compile(r"[0-9]{1,5}")


def _scanner_list(
    s: _Section, k: str, default: tuple[str, ...], item: re.Pattern[str]
) -> tuple[str, ...]:
    """A `[[scanner]]` array of strings (integers allowed for `roi`), each matching `item`."""
    v = s._get(k)
    if v is None:
        return default
    if not isinstance(v, list) or not all(
        isinstance(x, str | int) and not isinstance(x, bool) and item.fullmatch(str(x)) for x in v
    ):
        s.problems.append(f"{s.key(k)}: must be a list of values matching {item.pattern}")
        return default
    return tuple(str(x) for x in v)


def _scanner_bool(s: _Section, k: str, default: bool) -> bool:
    v = s._get(k)
    if v is None:
        return default
    if not isinstance(v, bool):
        s.problems.append(f"{s.key(k)}: must be true or false, got {type(v).__name__}")
        return default
    return v


_SECTIONS: Final = (
    "device",
    "scanner",
    "operation",
    "mqtt",
    "catalog",
    "store",
    "policy",
    "masterdata",
    "feedback",
    "api",
    "status",
)


def parse(doc: Mapping[str, object], base: Path) -> Config:
    """Build a `Config` from parsed TOML, raising `ConfigError` listing every problem."""
    problems: list[str] = []
    for k in doc:
        if k not in _SECTIONS:
            hint = difflib.get_close_matches(k, _SECTIONS, n=1)
            more = f" (did you mean {hint[0]!r}?)" if hint else ""
            problems.append(f"{k}: unknown section{more}")

    s = _Section("device", doc.get("device"), problems, base)
    device = DeviceConfig(
        id=s.string("id", "", pattern=_DEVICE_ID, required=True),
        site=s.string("site", "", pattern=_DEVICE_ID, required=True),
        data_dir=s.path("data_dir", DEFAULT_DATA_DIR) or DEFAULT_DATA_DIR,
        key_dir=s.path("key_dir", DEFAULT_KEY_DIR) or DEFAULT_KEY_DIR,
        lang=s.choice("lang", "zh", LANGS),
    )
    s.finish()
    if (
        device.data_dir.resolve() == device.key_dir.resolve()
        or device.key_dir.resolve().is_relative_to(device.data_dir.resolve())
    ):
        problems.append(
            "device.key_dir: must be outside device.data_dir (keys never live beside the data)"
        )

    raw_scanners = doc.get("scanner", [])
    if isinstance(raw_scanners, Mapping):
        raw_scanners = [raw_scanners]
    scanners: list[ScannerConfig] = []
    if not isinstance(raw_scanners, list):
        problems.append("scanner: must be an array of tables ([[scanner]])")
        raw_scanners = []
    for i, table in enumerate(raw_scanners):
        s = _Section(f"scanner[{i}]", table, problems, base)
        kind = s.choice("type", "serial", SCANNER_TYPES)
        port = s.string("port", "", required=True)
        defaults = ScannerConfig()
        roi = _scanner_list(s, "roi", (), _ROI_ITEM)
        if roi and (len(roi) != 4 or int(roi[2]) <= 0 or int(roi[3]) <= 0):
            problems.append(f"{s.key('roi')}: must be [x, y, width, height] with width, height > 0")
        scanner = ScannerConfig(
            type=kind,
            port=port,
            name=s.string("name", f"{kind}{i}", pattern=_DEVICE_ID),
            baudrate=s.integer("baudrate", 9600, 300, 4_000_000),
            max_line=s.integer("max_line", 4096, 64, 1 << 20),
            terminator=s.choice("terminator", "any", ("any", "cr", "lf", "crlf")),
            suffix=s.string("suffix", ""),
            layout=s.choice("layout", "us", ("us", "uk", "de", "fr", "calibrated")),
            keymap_file=s.existing_file("keymap_file"),
            end_keys=_scanner_list(s, "end_keys", defaults.end_keys, _KEY_NAME),
            inter_key_timeout_ms=s.integer("inter_key_timeout_ms", 50, 0, 10_000),
            gs_keys=_scanner_list(s, "gs_keys", (), _KEY_NAME),
            grab=_scanner_bool(s, "grab", True),
            decoder=s.choice("decoder", "zxing", ("zxing", "pyzbar")),
            formats=_scanner_list(s, "formats", defaults.formats, _FORMAT_NAME),
            roi=(int(roi[0]), int(roi[1]), int(roi[2]), int(roi[3])) if len(roi) == 4 else None,
            downscale=s.number("downscale", 1.0, 0.05, 1.0),
            holdoff_ms=s.integer("holdoff_ms", 1500, 0, 600_000),
            fps=s.number("fps", 0.0, 0.0, 240.0),
        )
        if scanner.layout == "calibrated" and scanner.keymap_file is None:
            problems.append(f'{s.key("keymap_file")}: required with layout = "calibrated"')
        s.finish()
        scanners.append(scanner)
    names = [sc.name for sc in scanners]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"scanner.name: {dup!r} is used by more than one scanner")
    # --- drivers (issue 16): what each driver refuses (key names, keymap files, suffix bytes) ---
    from agent.config.scanners import scanner_problems  # noqa: PLC0415 - owned by drivers work

    problems.extend(scanner_problems(scanners))

    s = _Section("operation", doc.get("operation"), problems, base)
    mode = s.choice("mode", DEFAULT_OPERATION, OPERATIONS)
    doc_id = s.string("doc", "") or None
    operation = OperationConfig(mode=mode, doc=doc_id)
    s.finish()

    s = _Section("mqtt", doc.get("mqtt"), problems, base)
    mqtt = MqttConfig(
        host=s.string("host", "127.0.0.1", required=False),
        port=s.integer("port", 1883, 1, 65535),
        topic_prefix=s.string("topic_prefix", "tracescan/v1", pattern=re.compile(r"[^#+\x00]+")),
        client_id=s.string("client_id", ""),
        keepalive=s.integer("keepalive", 30, 2, 3600),  # 2 s: fault tests; field links use 30+
        protocol=s.choice("protocol", "5", ("5", "3.1.1")),
        inflight=s.integer("inflight", 20, 1, 1000),
        backoff_initial=s.number("backoff_initial", 0.5, 0.01, 60.0),
        backoff_max=s.number("backoff_max", 60.0, 0.1, 3600.0),
        username=s.string("username", ""),
        password=s.string("password", ""),
        ca_file=s.existing_file("ca_file"),
        cert_file=s.existing_file("cert_file"),
        key_file=s.existing_file("key_file"),
    )
    if (mqtt.cert_file is None) != (mqtt.key_file is None):
        problems.append("mqtt.cert_file: mutual TLS needs both cert_file and key_file")
    s.finish()

    s = _Section("catalog", doc.get("catalog"), problems, base)
    catalog = CatalogConfig(path=s.existing_file("path"))
    s.finish()

    s = _Section("policy", doc.get("policy"), problems, base)
    policy = PolicyConfig(
        double_read_window=s.number("double_read_window", 1.5, 0.0, 60.0),
        stop_the_line=s.boolean("stop_the_line", True),
        manifest_mode=s.choice("manifest_mode", "refuse", ("refuse", "warn")),
    )
    s.finish()

    s = _Section("masterdata", doc.get("masterdata"), problems, base)
    masterdata = MasterDataConfig(
        relations=s.existing_file("relations"),
        blocklist=s.existing_file("blocklist"),
        manifests=s.file_list("manifests"),
    )
    s.finish()

    s = _Section("store", doc.get("store"), problems, base)
    store = StoreConfig(
        max_bytes=s.integer("max_bytes", DEFAULT_MAX_BYTES, 1 << 20, 1 << 40),
        retention_days=s.number("retention_days", DEFAULT_RETENTION_DAYS, 0.0, 3650.0),
    )
    s.finish()

    feedback, api, status = _ops_sections(doc, problems, base)

    if problems:
        raise ConfigError(problems)
    return Config(
        device=device,
        scanners=tuple(scanners),
        operation=operation,
        mqtt=mqtt,
        catalog=catalog,
        store=store,
        policy=policy,
        masterdata=masterdata,
        feedback=feedback,
        api=api,
        status=status,
    )


_ISO_DATE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_ARG: Final = re.compile(r"[^\x00]+")


def _ops_sections(
    doc: Mapping[str, object], problems: list[str], base: Path
) -> tuple[FeedbackConfig, ApiConfig, StatusConfig]:
    """[feedback], [api] and [status]."""
    s = _Section("feedback", doc.get("feedback"), problems, base)
    beeps = {k: s.string(k, "") for k in ("beeper_accepted", "beeper_refused", "beeper_held")}
    for k, v in beeps.items():
        if any(ord(c) > 255 for c in v):
            problems.append(f"{s.key(k)}: only bytes \\u0000..\\u00ff can be sent to a scanner")
    feedback = FeedbackConfig(
        console=s.boolean("console", True),
        bell=s.boolean("bell", False),
        sound_accepted=s.existing_file("sound_accepted"),
        sound_refused=s.existing_file("sound_refused"),
        sound_held=s.existing_file("sound_held"),
        player=_scanner_list(s, "player", ("aplay", "-q"), _ARG),
        beeper_accepted=beeps["beeper_accepted"],
        beeper_refused=beeps["beeper_refused"],
        beeper_held=beeps["beeper_held"],
    )
    s.finish()

    s = _Section("api", doc.get("api"), problems, base)
    api = ApiConfig(
        enabled=s.boolean("enabled", True),
        socket=s.path("socket", None),
        group=s.string("group", "tracescan"),
        prometheus_port=s.integer("prometheus_port", 0, 0, 65535),
    )
    s.finish()

    s = _Section("status", doc.get("status"), problems, base)
    status = StatusConfig(
        upload_deadline_days=s.integer("upload_deadline_days", 7, 1, 365),
        holidays=_scanner_list(s, "holidays", (), _ISO_DATE),
        window_hours=s.number("window_hours", 24.0, 0.1, 24.0 * 366),
    )
    for day in status.holidays:
        try:
            dt.date.fromisoformat(day)
        except ValueError:
            problems.append(f"{s.key('holidays')}: {day!r} is not a calendar date")
    s.finish()
    return feedback, api, status


def load(path: Path) -> Config:
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
    return replace(parse(doc, path.resolve().parent), source=path)
