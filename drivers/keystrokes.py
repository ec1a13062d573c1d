"""Keystrokes to scans: the pure core of the keyboard-wedge (HID) driver.

Input is the evdev event stream of one scanner (`EV_KEY`, `EV_SYN`, `EV_MSC`, ...) and a clock
value passed in with each call; output is the text of each completed scan. No device, no
clock of its own, so a whole scan session can be replayed and tested as data.

What it handles, and why:
- the scanner's keyboard layout (`drivers.keymap`), Shift, AltGr, CapsLock and dead keys;
- control characters: Ctrl+letter and Ctrl+] (GS, 0x1D) as scanners send them in "control
  character" mode, Alt+numpad decimal codes (Alt+0029 = GS) as they send them in "Windows"
  mode, and configurable keys that stand for GS (some scanners send GS as a function key);
- AIM symbology prefixes (`]C1`, `]d2`, ...) are typed characters and pass through untouched;
- a scan ends on a terminator key (Enter, keypad Enter, Tab by default) or when no key has
  arrived for the inter-key timeout;
- `SYN_DROPPED` (the kernel's buffer overflowed): the scan in progress cannot be trusted and is
  dropped *through its end* (terminator or timeout) — the keys after the gap are a fragment
  that could itself look like a shorter valid code; events up to the next `SYN_REPORT` are
  ignored, and modifier state is reset (the device shell re-reads the real key state with
  `resync`), so Shift is never stuck on. The worker gets no confirmation and scans again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Protocol

from evdev import ecodes as e

from drivers.keymap import Keymap, Stroke

GS: Final = "\x1d"
#: What an unmappable key turns into: recognition then refuses the scan instead of a silently
#: shorter code being taken for a different one.
UNMAPPED: Final = "\ufffd"

DEFAULT_END_KEYS: Final = (e.KEY_ENTER, e.KEY_KPENTER, e.KEY_TAB)

_SHIFT: Final = frozenset({e.KEY_LEFTSHIFT, e.KEY_RIGHTSHIFT})
_CTRL: Final = frozenset({e.KEY_LEFTCTRL, e.KEY_RIGHTCTRL})
_ALT: Final = frozenset({e.KEY_LEFTALT})
_ALTGR: Final = frozenset({e.KEY_RIGHTALT})
_MODIFIERS: Final = _SHIFT | _CTRL | _ALT | _ALTGR | {e.KEY_LEFTMETA, e.KEY_RIGHTMETA}

_KEYPAD_DIGITS: Final = {
    e.KEY_KP0: 0,
    e.KEY_KP1: 1,
    e.KEY_KP2: 2,
    e.KEY_KP3: 3,
    e.KEY_KP4: 4,
    e.KEY_KP5: 5,
    e.KEY_KP6: 6,
    e.KEY_KP7: 7,
    e.KEY_KP8: 8,
    e.KEY_KP9: 9,
}

#: Ctrl + key → control character, by key position. Scanner firmware emits control characters
#: from a fixed US-position table whatever host layout it is set to (Ctrl+] is the key right of
#: P), so these are by key code, not by the layout's character.
_CTRL_KEYS: Final = {
    e.KEY_2: "\x00",
    e.KEY_LEFTBRACE: "\x1b",
    e.KEY_BACKSLASH: "\x1c",
    e.KEY_RIGHTBRACE: GS,
    e.KEY_6: "\x1e",
    e.KEY_MINUS: "\x1f",
    **{getattr(e, f"KEY_{c}"): chr(i + 1) for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZ")},
}

_KEY_DOWN: Final = 1
_KEY_UP: Final = 0


class EvdevEvent(Protocol):
    """What the decoder reads from an event: `evdev.InputEvent` has these."""

    @property
    def type(self) -> int:
        """Event type (EV_KEY, EV_SYN, ...)."""

    @property
    def code(self) -> int:
        """Key or sync code."""

    @property
    def value(self) -> int:
        """1 press, 0 release, 2 autorepeat for keys."""


@dataclass(frozen=True, slots=True)
class KeystrokeOptions:
    """How a particular scanner types."""

    end_keys: frozenset[int] = frozenset(DEFAULT_END_KEYS)
    #: Seconds without a key after which a scan in progress is complete (0 = never).
    inter_key_timeout: float = 0.05
    #: Keys that stand for GS (e.g. KEY_F8 on scanners configured to send GS as a function key).
    gs_keys: frozenset[int] = frozenset()


class KeystrokeDecoder:
    """Turns one scanner's evdev events into scan texts."""

    def __init__(self, keymap: Keymap, options: KeystrokeOptions | None = None) -> None:
        self.keymap = keymap
        self.options = options or KeystrokeOptions()
        self._held: set[int] = set()
        self._capslock = False
        self._text: list[str] = []
        self._last_key_at: float | None = None
        self._dead: str | None = None
        self._alt_code: int | None = None
        self._dropping = False
        self._poisoned = False
        #: Scans discarded because events were lost (SYN_DROPPED) — for diagnostics.
        self.dropped_scans = 0
        #: Key presses that had no character in the layout.
        self.unmapped_keys = 0
        #: Strokes of the scan in progress, and of the last completed one (for calibration).
        self.strokes: list[Stroke] = []
        self.last_strokes: list[Stroke] = []

    @property
    def pending(self) -> bool:
        """True while a scan is in progress (keys typed, no terminator or timeout yet)."""
        return (
            bool(self._text)
            or self._dead is not None
            or self._alt_code is not None
            or (self._poisoned and self._last_key_at is not None)
        )

    def deadline(self) -> float | None:
        """When the scan in progress completes by timeout (None: no scan in progress)."""
        if not self.pending or self._last_key_at is None or self.options.inter_key_timeout <= 0:
            return None
        return self._last_key_at + self.options.inter_key_timeout

    def feed(self, event: EvdevEvent, now: float) -> list[str]:
        """Take one event at clock time `now`; return the scans it completes (usually none)."""
        if event.type == e.EV_SYN:
            if event.code == e.SYN_DROPPED:
                self._drop()
            elif event.code == e.SYN_REPORT:
                self._dropping = False
            return []
        if self._dropping or event.type != e.EV_KEY:
            return []
        out = self.expire(now)
        code, value = event.code, event.value
        if code in _MODIFIERS:
            self._modifier(code, value)
            return out
        if value != _KEY_DOWN:
            # Releases carry nothing; autorepeat (2) is ignored because a scanner never holds
            # a key down, and a repeat would duplicate a character of the code.
            return out
        self._last_key_at = now
        if code == e.KEY_CAPSLOCK:
            self._capslock = not self._capslock
            return out
        if code in self.options.end_keys and not (self._held & _CTRL):
            self._last_key_at = None
            done = self._finish()
            if done is not None:
                out.append(done)
            return out
        self._press(code)
        return out

    def expire(self, now: float) -> list[str]:
        """Complete the scan in progress if the inter-key timeout has passed by `now`."""
        deadline = self.deadline()
        if deadline is None or now < deadline:
            return []
        done = self._finish()
        return [done] if done is not None else []

    def resync(self, held_keys: Iterable[int], capslock: bool) -> None:
        """Set modifier state to what the device reports (after open or SYN_DROPPED)."""
        self._held = {k for k in held_keys if k in _MODIFIERS}
        self._capslock = capslock

    def _drop(self) -> None:
        if not self._poisoned:
            self.dropped_scans += 1
        self._reset_scan()
        self._poisoned = True
        # Releases may have been lost: without a resync from the device, assume nothing held.
        self._held.clear()
        self._dropping = True

    def _modifier(self, code: int, value: int) -> None:
        if value == _KEY_DOWN:
            self._held.add(code)
        elif value == _KEY_UP:
            self._held.discard(code)
            if code in _ALT and not (self._held & _ALT) and self._alt_code is not None:
                # Alt released: the decimal code typed on the keypad becomes one character.
                self._append(chr(self._alt_code) if self._alt_code < 0x110000 else UNMAPPED)
                self._alt_code = None

    def _press(self, code: int) -> None:
        held = self._held
        if code in self.options.gs_keys:
            self._append(GS)
            return
        if held & _ALT and code in _KEYPAD_DIGITS:
            self._alt_code = (self._alt_code or 0) * 10 + _KEYPAD_DIGITS[code]
            return
        if held & _CTRL:
            self._append(_CTRL_KEYS.get(code, UNMAPPED))
            return
        stroke = Stroke(code, bool(held & _SHIFT), bool(held & _ALTGR))
        self.strokes.append(stroke)
        char = self.keymap.char(stroke, self._capslock)
        if char is None:
            self.unmapped_keys += 1
            self._append(UNMAPPED)
            return
        if self.keymap.is_dead(stroke) and self._dead is None:
            self._dead = char
            return
        if self._dead is not None:
            # Dead key then space types the accent itself; anything else types both.
            dead, self._dead = self._dead, None
            self._append(dead if char == " " else dead + char)
            return
        self._append(char)

    def _append(self, text: str) -> None:
        self._text.append(text)

    def _finish(self) -> str | None:
        if self._dead is not None:
            self._text.append(self._dead)
        text = "".join(self._text)
        self.last_strokes = self.strokes
        poisoned, self._poisoned = self._poisoned, False
        self._reset_scan()
        return None if poisoned else (text or None)

    def _reset_scan(self) -> None:
        self._text.clear()
        self._dead = None
        self._alt_code = None
        self._last_key_at = None
        self.strokes = []


def decode_stream(
    events: Iterable[tuple[EvdevEvent, float]],
    keymap: Keymap,
    options: KeystrokeOptions | None = None,
    *,
    end: float | None = None,
) -> list[str]:
    """Decode a whole recorded stream of `(event, time)` pairs; `end` flushes a trailing scan."""
    decoder = KeystrokeDecoder(keymap, options)
    scans: list[str] = []
    for event, now in events:
        scans.extend(decoder.feed(event, now))
    if end is not None:
        scans.extend(decoder.expire(end))
    return scans
