"""Keyboard layouts for keyboard-wedge scanners: which key, with which modifiers, types what.

A wedge scanner does not send characters; it presses keys as if a person typed the code on a
keyboard of the layout the scanner was configured for. Reading such a scanner with the wrong
table turns `]` into `+` (de) or digits into `&é"'(` (fr). Each table here maps a Linux key code
to the character it types at four levels: plain, Shift, AltGr, Shift+AltGr. When the
scanner's layout is not one of these, a calibration scan of a printed barcode with known
content learns the table (`learn_keymap`).

Pure: no device, no clock.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from evdev import ecodes as e

#: Levels a key can be typed at.
PLAIN: Final = 0
SHIFT: Final = 1
ALTGR: Final = 2
SHIFT_ALTGR: Final = 3

#: What a calibration barcode carries: every character a trace code, GS1 element string, MA
#: code or AIM identifier can contain (GS1 character set 82 plus the rest of printable ASCII).
CALIBRATION_TEXT: Final = (
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
)

_LETTER_KEYS: Final = {c: getattr(e, f"KEY_{c.upper()}") for c in "abcdefghijklmnopqrstuvwxyz"}


class KeymapError(Exception):
    """A layout cannot be loaded or learnt; the message says what to do instead."""


@dataclass(frozen=True, slots=True)
class Stroke:
    """One key press as the scanner made it: key code and the modifiers held."""

    code: int
    shift: bool = False
    altgr: bool = False

    @property
    def level(self) -> int:
        """The table level this stroke types at (CapsLock is applied separately)."""
        return (SHIFT if self.shift else PLAIN) | (ALTGR if self.altgr else PLAIN)


@dataclass(frozen=True, slots=True)
class Keymap:
    """Key code and level → character, plus the keys that are dead (compose with the next)."""

    name: str
    table: Mapping[tuple[int, int], str]
    dead: frozenset[tuple[int, int]] = field(default_factory=frozenset)

    def char(self, stroke: Stroke, capslock: bool = False) -> str | None:
        """The character `stroke` types, or None when this layout has none for it."""
        level = stroke.level
        if capslock:
            plain = self.table.get((stroke.code, level & ALTGR))
            # CapsLock shifts letters only (as xkb does): digits and punctuation are unchanged.
            if plain is not None and plain.isalpha() and plain.islower():
                level ^= SHIFT
        return self.table.get((stroke.code, level))

    def is_dead(self, stroke: Stroke) -> bool:
        """True when the key is a dead key at this level (it composes with the next key)."""
        return (stroke.code, stroke.level) in self.dead

    def strokes_for(self, char: str) -> Stroke | None:
        """How to type `char` on this layout (simulators use this); None if it cannot be typed."""
        # Prefer the main block over the keypad, then the lowest level: what scanners do.
        ranked = sorted(self.table.items(), key=lambda kv: (kv[0][0] in _KEYPAD, kv[0][1]))
        for (code, level), c in ranked:
            if c == char:
                return Stroke(code, bool(level & SHIFT), bool(level & ALTGR))
        return None

    def to_json(self) -> str:
        """The table as JSON, for a learnt keymap file."""
        rows = [
            [code, level, char, (code, level) in self.dead]
            for (code, level), char in sorted(self.table.items())
        ]
        return json.dumps({"name": self.name, "keys": rows}, ensure_ascii=False, indent=0)

    @classmethod
    def from_json(cls, text: str) -> Keymap:
        """Read a keymap written by `to_json`."""
        try:
            doc = json.loads(text)
            rows = doc["keys"]
            table = {(int(r[0]), int(r[1])): str(r[2]) for r in rows}
            dead = frozenset((int(r[0]), int(r[1])) for r in rows if len(r) > 3 and r[3])
            return cls(str(doc.get("name", "calibrated")), table, dead)
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise KeymapError(f"keymap file is not a tracescan keymap: {exc}") from exc


def _build(name: str, keys: Mapping[int, str], dead: Iterable[tuple[int, int]] = ()) -> Keymap:
    """Build a table from `code → "plain shift altgr shift_altgr"` strings (space = none)."""
    table: dict[tuple[int, int], str] = {}
    for code, levels in keys.items():
        for level, char in enumerate(levels):
            if char != " " or (code == e.KEY_SPACE and level == PLAIN):
                table[(code, level)] = char
    return Keymap(name, table, frozenset(dead))


def _letters(moved: Mapping[str, int] | None = None) -> dict[int, str]:
    """Letter keys; `moved` says where a letter sits when not on its US key (QWERTZ, AZERTY)."""
    moved = moved or {}
    return {moved.get(c, _LETTER_KEYS[c]): c + c.upper() for c in "abcdefghijklmnopqrstuvwxyz"}


#: The numeric keypad types the same on every layout here (NumLock on, as scanners assume),
#: except the decimal key, which follows the locale.
_KEYPAD: Final = {
    e.KEY_KP0: "0",
    e.KEY_KP1: "1",
    e.KEY_KP2: "2",
    e.KEY_KP3: "3",
    e.KEY_KP4: "4",
    e.KEY_KP5: "5",
    e.KEY_KP6: "6",
    e.KEY_KP7: "7",
    e.KEY_KP8: "8",
    e.KEY_KP9: "9",
    e.KEY_KPMINUS: "-",
    e.KEY_KPPLUS: "+",
    e.KEY_KPASTERISK: "*",
    e.KEY_KPSLASH: "/",
    e.KEY_KPDOT: ".",
    e.KEY_SPACE: " ",
}

_US_KEYS: Final = {
    e.KEY_1: "1!",
    e.KEY_2: "2@",
    e.KEY_3: "3#",
    e.KEY_4: "4$",
    e.KEY_5: "5%",
    e.KEY_6: "6^",
    e.KEY_7: "7&",
    e.KEY_8: "8*",
    e.KEY_9: "9(",
    e.KEY_0: "0)",
    e.KEY_MINUS: "-_",
    e.KEY_EQUAL: "=+",
    e.KEY_LEFTBRACE: "[{",
    e.KEY_RIGHTBRACE: "]}",
    e.KEY_SEMICOLON: ";:",
    e.KEY_APOSTROPHE: "'\"",
    e.KEY_GRAVE: "`~",
    e.KEY_BACKSLASH: "\\|",
    e.KEY_COMMA: ",<",
    e.KEY_DOT: ".>",
    e.KEY_SLASH: "/?",
}

US: Final = _build("us", {**_KEYPAD, **_letters(), **_US_KEYS})

UK: Final = _build(
    "uk",
    {
        **_KEYPAD,
        **_letters(),
        **_US_KEYS,
        e.KEY_2: '2"',
        e.KEY_3: "3£",
        e.KEY_4: "4$€",
        e.KEY_APOSTROPHE: "'@",
        e.KEY_BACKSLASH: "#~",
        e.KEY_GRAVE: "`¬¦",
        e.KEY_102ND: "\\|",
    },
)

DE: Final = _build(
    "de",
    {
        **_KEYPAD,
        e.KEY_KPDOT: ",",
        **_letters({"y": e.KEY_Z, "z": e.KEY_Y}),
        e.KEY_Q: "qQ@",
        e.KEY_E: "eE€",
        e.KEY_M: "mMµ",
        e.KEY_1: "1!",
        e.KEY_2: '2"²',
        e.KEY_3: "3§³",
        e.KEY_4: "4$",
        e.KEY_5: "5%",
        e.KEY_6: "6&",
        e.KEY_7: "7/{",
        e.KEY_8: "8([",
        e.KEY_9: "9)]",
        e.KEY_0: "0=}",
        e.KEY_MINUS: "ß?\\",
        e.KEY_EQUAL: "´`",
        e.KEY_GRAVE: "^°",
        e.KEY_LEFTBRACE: "üÜ",
        e.KEY_RIGHTBRACE: "+*~",
        e.KEY_SEMICOLON: "öÖ",
        e.KEY_APOSTROPHE: "äÄ",
        e.KEY_BACKSLASH: "#'",
        e.KEY_COMMA: ",;",
        e.KEY_DOT: ".:",
        e.KEY_SLASH: "-_",
        e.KEY_102ND: "<>|",
    },
    dead=[(e.KEY_EQUAL, PLAIN), (e.KEY_EQUAL, SHIFT), (e.KEY_GRAVE, PLAIN)],
)

FR: Final = _build(
    "fr",
    {
        **_KEYPAD,
        **_letters({"a": e.KEY_Q, "q": e.KEY_A, "z": e.KEY_W, "w": e.KEY_Z, "m": e.KEY_SEMICOLON}),
        e.KEY_E: "eE€",
        e.KEY_1: "&1",
        e.KEY_2: "é2~",
        e.KEY_3: '"3#',
        e.KEY_4: "'4{",
        e.KEY_5: "(5[",
        e.KEY_6: "-6|",
        e.KEY_7: "è7`",
        e.KEY_8: "_8\\",
        e.KEY_9: "ç9^",
        e.KEY_0: "à0@",
        e.KEY_MINUS: ")°]",
        e.KEY_EQUAL: "=+}",
        e.KEY_LEFTBRACE: "^¨",
        e.KEY_RIGHTBRACE: "$£¤",
        e.KEY_APOSTROPHE: "ù%",
        e.KEY_BACKSLASH: "*µ",
        e.KEY_M: ",?",
        e.KEY_COMMA: ";.",
        e.KEY_DOT: ":/",
        e.KEY_SLASH: "!§",
        e.KEY_GRAVE: "²",
        e.KEY_102ND: "<>",
    },
    dead=[(e.KEY_2, ALTGR), (e.KEY_7, ALTGR), (e.KEY_LEFTBRACE, PLAIN), (e.KEY_LEFTBRACE, SHIFT)],
)

LAYOUTS: Final[Mapping[str, Keymap]] = {k.name: k for k in (US, UK, DE, FR)}


def layout(name: str, keymap_file: Path | None = None) -> Keymap:
    """The named layout, or the learnt one in `keymap_file` when `name` is "calibrated"."""
    if name == "calibrated":
        if keymap_file is None:
            raise KeymapError("layout 'calibrated' needs keymap_file (run the calibration scan)")
        try:
            return Keymap.from_json(keymap_file.read_text(encoding="utf-8"))
        except OSError as exc:
            raise KeymapError(f"cannot read keymap file {keymap_file}: {exc}") from exc
    try:
        return LAYOUTS[name]
    except KeyError:
        raise KeymapError(
            f"layout {name!r} is not known; use one of {', '.join(LAYOUTS)} or 'calibrated'"
        ) from None


def key_code(name: str) -> int:
    """`"enter"`, `"KEY_ENTER"` or `"kp_enter"` → the evdev key code; ValueError if unknown."""
    upper = name.strip().upper()
    full = upper if upper.startswith("KEY_") else f"KEY_{upper}"
    for candidate in (full.replace("KP_", "KP"), full):
        code = e.ecodes.get(candidate)
        if isinstance(code, int):
            return code
    raise ValueError(f"{name!r} is not a key name (e.g. enter, kp_enter, tab, f8)")


def learn_keymap(
    strokes: Sequence[Stroke], expected: str = CALIBRATION_TEXT, name: str = "calibrated"
) -> Keymap:
    """Learn a layout from the strokes a scanner made while reading a barcode of `expected`.

    `expected` must not contain a space: a Space stroke right after another key is the
    scanner composing a dead key (`^` on de is dead-^ then Space), so the key before it is
    learnt as dead. Raises `KeymapError` when the strokes do not line up with `expected` or one
    stroke would have to type two different characters.
    """
    typed: list[Stroke] = []
    dead: set[tuple[int, int]] = set()
    for stroke in strokes:
        if stroke.code == e.KEY_SPACE and stroke.level == PLAIN and typed:
            dead.add((typed[-1].code, typed[-1].level))
            continue
        typed.append(stroke)
    if len(typed) != len(expected):
        raise KeymapError(
            f"calibration scan had {len(typed)} key presses for {len(expected)} characters; "
            "scan the calibration barcode again (the scanner must not add a prefix or suffix "
            "other than the terminator)"
        )
    table: dict[tuple[int, int], str] = {}
    for stroke, char in zip(typed, expected, strict=True):
        key = (stroke.code, stroke.level)
        if table.setdefault(key, char) != char:
            raise KeymapError(
                f"key {e.KEY.get(stroke.code, stroke.code)} level {stroke.level} typed both "
                f"{table[key]!r} and {char!r}; the scan was not a clean calibration read"
            )
    # The keypad and space are not on the calibration barcode but scanners use them.
    for (code, level), char in US.table.items():
        if code in _KEYPAD:
            table.setdefault((code, level), char)
    return Keymap(name, table, frozenset(dead))
