"""Value kinds: how one TOML value is checked and turned into what a program uses.

A kind knows nothing of keys or sections: it reads one raw value and either returns it
converted or raises `Invalid` saying what is wrong, in words that follow the key in a problem
line (`mqtt.port: 70000 is outside 1..65535`). The schema adds the key and collects the lines.
"""

from __future__ import annotations

import datetime as dt
import re
import stat
from abc import ABC, abstractmethod
from collections.abc import Iterable
from pathlib import Path
from typing import ClassVar, Final, Generic, TypeVar

T = TypeVar("T")

_SHOWN_CHARS: Final = 240  # room for any real path; a hostile value is cut
_SHOWN_ITEMS: Final = 5  # list items reported one by one before the rest are counted


class Invalid(Exception):
    """A raw value is wrong; each of `problems` is `(where, what)`.

    `where` is appended to the key: "" for the value itself, "[2]" for an item of a list.
    """

    def __init__(self, what: str, where: str = "") -> None:
        self.problems: list[tuple[str, str]] = [(where, what)]
        super().__init__(what)

    @classmethod
    def of(cls, problems: list[tuple[str, str]]) -> Invalid:
        """One error carrying several problems (a list whose items are wrong)."""
        error = cls(problems[0][1], problems[0][0])
        error.problems = problems
        return error


def quoted(value: object) -> str:
    """`value` as a problem line shows it: its repr, cut short so a hostile value stays legible."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        # repr() of a huge integer is unreadable, and past 4300 digits it raises ValueError
        return f"a {value.bit_length()}-bit integer"
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else f"{text[: _SHOWN_CHARS - 1]}…"


def type_name(value: object) -> str:
    """The TOML-ish name of a raw value's type, for "must be …, got X"."""
    return type(value).__name__


class Kind(ABC, Generic[T]):
    """How one raw TOML value is checked and converted to a `T`."""

    secret: ClassVar[bool] = False  # a value never shown (masked, kept out of reprs)

    @abstractmethod
    def read(self, raw: object, base: Path) -> T:
        """The value converted, or `Invalid`; relative paths are taken against `base`."""

    def given(self, raw: object) -> bool:
        """Whether `raw` is a value at all; when not, the setting keeps its default."""
        return True

    def show(self, value: T) -> object:
        """`value` as plain data, safe to print or log."""
        return value


class Text(Kind[str]):
    """A string, optionally matching a regular expression as a whole."""

    def __init__(self, pattern: str | None = None, *, empty_is_unset: bool = False) -> None:
        self.pattern = re.compile(pattern) if pattern is not None else None
        self.empty_is_unset = empty_is_unset

    def given(self, raw: object) -> bool:
        return not (self.empty_is_unset and raw == "")

    def read(self, raw: object, base: Path) -> str:
        if not isinstance(raw, str):
            raise Invalid(f"must be a string, got {type_name(raw)}")
        if self.pattern is not None and not self.pattern.fullmatch(raw):
            raise Invalid(f"{quoted(raw)} must match {self.pattern.pattern}")
        return raw


class Secret(Text):
    """A string never shown: a password, a token, a connection string carrying one."""

    secret = True

    def read(self, raw: object, base: Path) -> str:
        if not isinstance(raw, str):
            raise Invalid(f"must be a string, got {type_name(raw)}")
        if self.pattern is not None and not self.pattern.fullmatch(raw):
            raise Invalid(f"must match {self.pattern.pattern} (the value is not shown)")
        return raw

    def show(self, value: str) -> object:
        return "***" if value else ""


class Choice(Kind[str]):
    """One string out of a fixed set."""

    def __init__(self, options: Iterable[str]) -> None:
        self.options = tuple(options)

    def read(self, raw: object, base: Path) -> str:
        if not isinstance(raw, str):
            raise Invalid(f"must be a string, got {type_name(raw)}")
        if raw not in self.options:
            raise Invalid(f"{quoted(raw)} is not one of {', '.join(self.options)}")
        return raw


class Int(Kind[int]):
    """A whole number within `lo..hi` (inclusive)."""

    def __init__(self, lo: int, hi: int) -> None:
        self.lo, self.hi = lo, hi

    def read(self, raw: object, base: Path) -> int:
        # bool is an int subclass in Python; `port = true` is a mistake, not 1
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise Invalid(f"must be an integer, got {type_name(raw)}")
        if not self.lo <= raw <= self.hi:
            raise Invalid(f"{quoted(raw)} is outside {self.lo}..{self.hi}")
        return raw


class Number(Kind[float]):
    """A number (integer or float) within `lo..hi` (inclusive), read as a float."""

    def __init__(self, lo: float, hi: float) -> None:
        self.lo, self.hi = lo, hi

    def read(self, raw: object, base: Path) -> float:
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise Invalid(f"must be a number, got {type_name(raw)}")
        if not self.lo <= raw <= self.hi:  # also refuses nan
            raise Invalid(f"{quoted(raw)} is outside {self.lo}..{self.hi}")
        return float(raw)


class Bool(Kind[bool]):
    """`true` or `false`."""

    def read(self, raw: object, base: Path) -> bool:
        if not isinstance(raw, bool):
            raise Invalid(f"must be true or false, got {type_name(raw)}")
        return raw


class AnyPath(Kind[Path]):
    """A filesystem path, `~` expanded, relative ones taken against the config's directory.

    An empty string means "not given" (the default stays), so `path = ""` can stand in an
    example file as a placeholder.
    """

    def given(self, raw: object) -> bool:
        return raw != ""

    def read(self, raw: object, base: Path) -> Path:
        if not isinstance(raw, str):
            raise Invalid(f"must be a path string, got {type_name(raw)}")
        if "\x00" in raw:  # the OS refuses such a name later, with a ValueError, not a problem line
            raise Invalid(f"{quoted(raw)} contains a NUL character")
        try:
            path = Path(raw).expanduser()
        except RuntimeError as exc:  # `~` with no home directory known
            raise Invalid(f"{quoted(raw)}: {exc}") from exc
        return path if path.is_absolute() else base / path

    def show(self, value: Path) -> object:
        return str(value)


class File(AnyPath):
    """A path to a file that exists when the configuration is read."""

    def read(self, raw: object, base: Path) -> Path:
        path = super().read(raw, base)
        try:
            exists = path.is_file()
        except OSError as exc:  # is_file() lets some errors through: a name too long, no access
            raise Invalid(f"file {quoted(str(path))} cannot be checked ({exc.strerror})") from exc
        if not exists:
            raise Invalid(f"file {quoted(str(path))} does not exist")
        return path


class PrivateFile(File):
    """A file holding a private key: refused when group or others have any access to it, as
    the agent's own keys are (a key readable by every local user is no secret)."""

    def read(self, raw: object, base: Path) -> Path:
        path = super().read(raw, base)
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except OSError as exc:
            raise Invalid(f"file {quoted(str(path))} cannot be checked ({exc.strerror})") from exc
        if mode & 0o077:
            raise Invalid(
                f"file {quoted(str(path))} is open to group or others (mode {mode:04o}): a private "
                f"key must be readable by the agent's user alone: chmod 600 {path}"
            )
        return path


class IsoDate(Kind[str]):
    """A calendar date written `YYYY-MM-DD`, kept as written."""

    _FORM: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

    def read(self, raw: object, base: Path) -> str:
        if not isinstance(raw, str):
            raise Invalid(f"must be a date string YYYY-MM-DD, got {type_name(raw)}")
        if not self._FORM.fullmatch(raw):
            raise Invalid(f"{quoted(raw)} must match {self._FORM.pattern}")
        try:
            dt.date.fromisoformat(raw)
        except ValueError as exc:
            raise Invalid(f"{quoted(raw)} is not a calendar date") from exc
        return raw


class ListOf(Kind[tuple[T, ...]], Generic[T]):
    """A TOML array whose every item is of kind `item`; read as a tuple."""

    def __init__(self, item: Kind[T]) -> None:
        self.item = item

    def read(self, raw: object, base: Path) -> tuple[T, ...]:
        if not isinstance(raw, list):
            raise Invalid(f"must be a list, got {type_name(raw)}")
        values: list[T] = []
        problems: list[tuple[str, str]] = []
        for i, item in enumerate(raw):
            try:
                values.append(self.item.read(item, base))
            except Invalid as exc:
                problems += [(f"[{i}]{where}", what) for where, what in exc.problems]
        if len(problems) > _SHOWN_ITEMS:
            more = len(problems) - _SHOWN_ITEMS
            problems = [*problems[:_SHOWN_ITEMS], ("", f"… and {more} more problems")]
        if problems:
            raise Invalid.of(problems)
        return tuple(values)

    def show(self, value: tuple[T, ...]) -> object:
        return tuple(self.item.show(v) for v in value)
