"""From `[[scanner]]` tables to each driver's own options.

The drivers know nothing of the agent's TOML: this module is the one place that translates a
`ScannerConfig` into `SerialOptions`, `HidOptions` or `CameraOptions` — a suffix string into
bytes, key names into key codes, a layout name or a learnt keymap file into a `Keymap`,
milliseconds into seconds.

`scanner_problems` runs the same translation's checks while the configuration loads, so a
mistyped key name (`end_keys = ["entr"]`), an unusable keymap file or a suffix that cannot be
sent on the wire is a configuration error naming its key (exit 78) instead of a scanner that is
silently left out at start. It imports only the pure `drivers.keymap`; `driver_options` imports
a driver module only for the tables that use it, so a serial station never loads OpenCV.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from agent.config.schema import ConfigError, Problem
from agent.config.sections import ScannerConfig

if TYPE_CHECKING:
    from drivers import ScannerOptions
    from drivers.keymap import Keymap


def scanner_problems(scanners: Sequence[ScannerConfig]) -> list[Problem]:
    """What the drivers would refuse in these tables, one `scanner[i].key: ...` line each."""
    problems: list[Problem] = []
    for i, cfg in enumerate(scanners):
        _check(cfg, f"scanner[{i}]", problems)
    return problems


def driver_options(cfg: ScannerConfig, key: str | None = None) -> ScannerOptions:
    """The options of the driver for one table; `ConfigError` naming `key` if it is unusable."""
    key = key or f"scanner {cfg.name!r}"
    problems: list[Problem] = []
    options = _build(cfg, key, problems)
    if options is None or problems:
        lines = [f"{p.key}: {p.message}" for p in problems]
        raise ConfigError(lines or [f"{key}.type: {cfg.type!r} has no driver"])
    return options


def _check(cfg: ScannerConfig, key: str, problems: list[Problem]) -> None:
    if cfg.type == "serial":
        _suffix(cfg, key, problems)
    elif cfg.type == "hid":
        _typing(cfg, key, problems)


def _build(cfg: ScannerConfig, key: str, problems: list[Problem]) -> ScannerOptions | None:
    try:
        if cfg.type == "serial":
            suffix = _suffix(cfg, key, problems)
            return None if problems else _serial(cfg, suffix)
        if cfg.type == "hid":
            wedge = _typing(cfg, key, problems)
            return None if wedge is None or problems else _hid(cfg, *wedge)
        if cfg.type == "camera":
            return _camera(cfg)
    except ValueError as exc:  # what the options themselves refuse
        problems.append(Problem(key, str(exc)))
    return None


def _serial(cfg: ScannerConfig, suffix: bytes) -> ScannerOptions:
    from drivers.serial import SerialOptions  # noqa: PLC0415 - load drivers on demand

    return SerialOptions(
        cfg.name,
        cfg.port,
        baudrate=cfg.baudrate,
        max_line=cfg.max_line,
        terminator=cfg.terminator,  # type: ignore[arg-type]  # the schema allows only these
        suffix=suffix,
    )


def _hid(
    cfg: ScannerConfig, keymap: Keymap, end_keys: frozenset[int], gs_keys: frozenset[int]
) -> ScannerOptions:
    from drivers.hid import HidOptions  # noqa: PLC0415 - load drivers on demand
    from drivers.keystrokes import KeystrokeOptions  # noqa: PLC0415

    return HidOptions(
        cfg.name,
        cfg.port,
        keymap=keymap,
        keystrokes=KeystrokeOptions(
            end_keys=end_keys, inter_key_timeout=cfg.inter_key_timeout_ms / 1000, gs_keys=gs_keys
        ),
        grab=cfg.grab,
    )


def _camera(cfg: ScannerConfig) -> ScannerOptions:
    from drivers.camera import CameraOptions, FrameOptions  # noqa: PLC0415 - OpenCV is heavy

    return CameraOptions(
        cfg.name,
        cfg.port,
        decoder="pyzbar" if cfg.decoder == "pyzbar" else "zxing",
        formats=cfg.formats,
        frame=FrameOptions(roi=cfg.roi, downscale=cfg.downscale),
        holdoff=cfg.holdoff_ms / 1000,
        fps=cfg.fps,
    )


def _suffix(cfg: ScannerConfig, key: str, problems: list[Problem]) -> bytes:
    try:
        return cfg.suffix.encode("latin-1")
    except UnicodeEncodeError:
        problems.append(
            Problem(
                f"{key}.suffix",
                f"{cfg.suffix!r} has characters above \\u00ff; a scanner sends bytes",
            )
        )
        return b""


def _typing(
    cfg: ScannerConfig, key: str, problems: list[Problem]
) -> tuple[Keymap, frozenset[int], frozenset[int]] | None:
    """How a wedge scanner types: its keymap, end keys and GS keys (None if unusable)."""
    keymap = _keymap(cfg, key, problems)
    end_keys = _key_codes(cfg.end_keys, f"{key}.end_keys", problems)
    gs_keys = _key_codes(cfg.gs_keys, f"{key}.gs_keys", problems)
    if not cfg.end_keys and cfg.inter_key_timeout_ms == 0:
        problems.append(
            Problem(
                f"{key}.end_keys", "empty while inter_key_timeout_ms = 0: a scan would never end"
            )
        )
    return None if keymap is None else (keymap, end_keys, gs_keys)


def _keymap(cfg: ScannerConfig, key: str, problems: list[Problem]) -> Keymap | None:
    from drivers.keymap import KeymapError, layout  # noqa: PLC0415 - drivers stay out of config

    if cfg.layout == "calibrated" and (cfg.keymap_file is None or not cfg.keymap_file.is_file()):
        return None  # the schema already said keymap_file is required or missing
    try:
        return layout(cfg.layout, cfg.keymap_file)
    except KeymapError as exc:
        which = "keymap_file" if cfg.layout == "calibrated" else "layout"
        problems.append(Problem(f"{key}.{which}", str(exc)))
        return None


def _key_codes(names: Iterable[str], key: str, problems: list[Problem]) -> frozenset[int]:
    from drivers.keymap import key_code  # noqa: PLC0415

    codes: set[int] = set()
    for name in names:
        try:
            codes.add(key_code(name))
        except ValueError as exc:
            problems.append(Problem(key, str(exc)))
    return frozenset(codes)
