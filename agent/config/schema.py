"""Declarative TOML configuration: each key stated once, every problem reported at once.

A program declares its configuration as frozen dataclasses. A *section* is a dataclass whose
fields are declared with `setting(default, kind, help)`; the *document* is a dataclass whose
fields are declared with `table(Section)` (a `[section]`) or `tables(Section, key=…)` (an array
of `[[key]]` tables). `read_document` walks those declarations: it checks every value against
its kind, names unknown keys and sections with a "did you mean …?", runs each dataclass's
cross-field rules (an optional `check()` method yielding `Problem`s), and raises one
`ConfigError` holding every problem line. `masked` turns a read document into plain data with
secrets masked; `reference` lists every key with its default and help, for documentation.

Nothing here knows any program's sections: the agent's live in `agent.config.sections`.
"""

from __future__ import annotations

import difflib
import json
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Final, NamedTuple, Protocol, TypeVar, runtime_checkable

from agent.config.kinds import Invalid, Kind

EX_CONFIG: Final = 78  # sysexits.h: configuration error
MAX_FILE_BYTES: Final = 1 << 20  # a configuration is a few KiB; this stops /dev/zero early

D = TypeVar("D")
S = TypeVar("S")
T = TypeVar("T")

_SETTING: Final = "tracescan.config.setting"
_TABLE: Final = "tracescan.config.table"
_HINT_MAX_CHARS: Final = 64  # longer unknown names are not typos of a key


class ConfigError(Exception):
    """The configuration is invalid; `problems` holds one `key: what is wrong` line each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class Problem(NamedTuple):
    """A cross-field rule broken: `key` relative to the dataclass that checks it."""

    key: str
    message: str


@runtime_checkable
class Checked(Protocol):
    """A section or document with rules spanning several keys."""

    def check(self) -> Iterator[Problem]:
        """Every rule broken by this (already type-checked) section."""
        ...


@dataclass(frozen=True, slots=True)
class Setting:
    """One key of a section: its kind, default and one line of help."""

    kind: Kind[Any]
    default: object
    help: str
    required: bool = False


@dataclass(frozen=True, slots=True)
class Table:
    """A document field read from `[key]` (`many=False`) or from `[[key]]` tables."""

    section: type[Any]
    key: str | None
    many: bool = False
    each: Callable[[Any, int], Any] | None = None  # completes the i-th of many tables


def setting(default: D, kind: Kind[T], help: str, *, required: bool = False) -> T | D:
    """Declare a section key: the field's default, its kind and a one-line help.

    Used as a dataclass field value (`baudrate: int = setting(9600, Int(300, 4_000_000), …)`).
    A `required` key has no useful default: leaving it out is a problem. Secrets are kept out
    of the dataclass repr.
    """
    spec = Setting(kind=kind, default=default, help=help, required=required)
    return field(default=default, metadata={_SETTING: spec}, repr=not kind.secret)


def table(section: type[S], *, key: str | None = None) -> S:
    """Declare a document field read from the `[key]` table (the field name by default)."""
    return field(default_factory=section, metadata={_TABLE: Table(section, key)})


def tables(
    section: type[S], *, key: str | None = None, each: Callable[[S, int], S] | None = None
) -> tuple[S, ...]:
    """Declare a document field read from an array of `[[key]]` tables.

    `each(section, index)` may complete a table from its position (a default name, say).
    """
    spec = Table(section, key, many=True, each=each)
    return field(default_factory=tuple, metadata={_TABLE: spec})


def settings_of(section: type[Any]) -> dict[str, Setting]:
    """The declared keys of a section dataclass, in declaration order."""
    return {f.name: f.metadata[_SETTING] for f in fields(section) if _SETTING in f.metadata}


def tables_of(document: type[Any]) -> dict[str, tuple[str, Table]]:
    """The declared tables of a document dataclass: TOML key → (field name, table)."""
    out: dict[str, tuple[str, Table]] = {}
    for f in fields(document):
        if _TABLE in f.metadata:
            spec: Table = f.metadata[_TABLE]
            out[spec.key or f.name] = (f.name, spec)
    return out


class _Problems:
    """Problem lines in the order found, and the keys whose value was wrong."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.bad_keys: set[str] = set()

    def add(self, key: str, message: str) -> None:
        self.lines.append(f"{key}: {message}")

    def bad_value(self, key: str, error: Invalid) -> None:
        self.bad_keys.add(key)
        for where, what in error.problems:
            self.add(f"{key}{where}", what)

    def unknown(self, prefix: str, name: str, what: str, known: list[str]) -> None:
        """`name` is not declared; suggest the closest of `known`, if one is close."""
        if len(name) > _HINT_MAX_CHARS:  # no typo of a key: just keep the line legible
            self.add(f"{prefix}{name[: _HINT_MAX_CHARS - 1]}…", what)
            return
        hint = difflib.get_close_matches(name, known, n=1)
        more = f" (did you mean {hint[0]!r}?)" if hint else ""
        self.add(f"{prefix}{name}", f"{what}{more}")

    def checked(self, prefix: str, subject: object) -> None:
        """Cross-field rules of `subject`, except on keys whose own value was already wrong."""
        if not isinstance(subject, Checked):
            return
        for key, message in subject.check():
            full = f"{prefix}{key}"
            if full not in self.bad_keys:
                self.add(full, message)


def _read_section(section: type[S], name: str, raw: object, base: Path, problems: _Problems) -> S:
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        problems.add(name, "must be a table")
        raw = {}
    specs = settings_of(section)
    values: dict[str, object] = {}
    for key, spec in specs.items():
        if key not in raw or not spec.kind.given(raw[key]):
            if spec.required:
                problems.add(f"{name}.{key}", "required")
            continue
        try:
            values[key] = spec.kind.read(raw[key], base)
        except Invalid as exc:
            problems.bad_value(f"{name}.{key}", exc)
    for key in raw:
        if key not in specs:
            problems.unknown(f"{name}.", str(key), "unknown key", list(specs))
    return section(**values)


def _read_table(spec: Table, key: str, raw: object, base: Path, problems: _Problems) -> object:
    if not spec.many:
        value = _read_section(spec.section, key, raw, base, problems)
        problems.checked(f"{key}.", value)
        return value
    if raw is None:
        return ()
    if isinstance(raw, Mapping):  # `[key]` written for a single `[[key]]`: the intent is clear
        raw = [raw]
    if not isinstance(raw, list):
        problems.add(key, f"must be an array of tables ([[{key}]])")
        return ()
    out = []
    for i, item in enumerate(raw):
        name = f"{key}[{i}]"
        value = _read_section(spec.section, name, item, base, problems)
        if spec.each is not None:
            value = spec.each(value, i)
        problems.checked(f"{name}.", value)
        out.append(value)
    return tuple(out)


def read_document(document: type[D], doc: Mapping[str, object], base: Path) -> D:
    """Build `document` from parsed TOML, raising `ConfigError` listing every problem.

    Relative paths are resolved against `base` (the directory holding the file).
    """
    problems = _Problems()
    specs = tables_of(document)
    for key in doc:
        if key not in specs:
            problems.unknown("", str(key), "unknown section", list(specs))
    values = {
        field_name: _read_table(spec, key, doc.get(key), base, problems)
        for key, (field_name, spec) in specs.items()
    }
    result = document(**values)
    problems.checked("", result)
    if problems.lines:
        raise ConfigError(problems.lines)
    return result


def read_toml(path: Path) -> dict[str, Any]:
    """The parsed TOML of `path`, or `ConfigError` naming the file and what is wrong with it."""
    try:
        with path.open("rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read ({exc.strerror})"]) from exc
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError([f"{path}: larger than {MAX_FILE_BYTES} bytes, not a configuration"])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: not UTF-8 ({exc})"]) from exc
    try:
        return tomllib.loads(text)
    except ValueError as exc:  # TOMLDecodeError, and an integer too long to convert
        raise ConfigError([f"{path}: invalid TOML: {exc}"]) from exc
    except RecursionError as exc:  # tomllib recurses into nested arrays and inline tables
        raise ConfigError([f"{path}: invalid TOML: nested too deeply"]) from exc


def load_document(document: type[D], path: Path) -> D:
    """Read and validate the TOML file `path` as a `document`."""
    doc = read_toml(path)
    return read_document(document, doc, path.resolve().parent)


def masked(document: object) -> dict[str, Any]:
    """A read document as plain data (paths as strings), secrets masked: safe to print or log."""
    out: dict[str, Any] = {}
    for key, (field_name, spec) in tables_of(type(document)).items():
        value = getattr(document, field_name)
        out[key] = [_masked_section(v) for v in value] if spec.many else _masked_section(value)
    return out


def _masked_section(section: object) -> dict[str, object]:
    return {
        key: None if (value := getattr(section, key)) is None else spec.kind.show(value)
        for key, spec in settings_of(type(section)).items()
    }


class Reference(NamedTuple):
    """One key as documentation lists it."""

    key: str  # `section.key`; a key of `[[scanner]]` tables is `scanner.key`
    setting: Setting

    @property
    def default(self) -> str:
        """The default as the README's tables write it: `required`, `none`, `empty`, `zh`, 9600."""
        return default_text(self.setting)

    def markdown(self) -> str:
        """A row of a `| key | default | meaning |` table."""
        return f"| `{self.key}` | {self.default} | {self.setting.help} |"


def reference(document: type[Any]) -> list[Reference]:
    """Every key of `document`, in declaration order."""
    return [
        Reference(f"{key}.{name}", spec)
        for key, (_, table_spec) in tables_of(document).items()
        for name, spec in settings_of(table_spec.section).items()
    ]


def default_text(spec: Setting) -> str:
    """How a default is written in documentation."""
    value = spec.default
    if spec.required:
        return "required"
    if value is None:
        return "none"
    if value == "":
        return "empty"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, tuple):  # as TOML writes an array: `["aplay", "-q"]`
        return f"`{json.dumps([str(v) if isinstance(v, Path) else v for v in value])}`"
    return f"`{value}`"  # a string or a path
