"""A virtual keyboard-wedge scanner: the evdev event stream a real one produces.

`VirtualHidScanner.events(code)` returns the exact events a USB HID scanner set to a given
keyboard layout makes when it reads `code`: for each key an `EV_MSC/MSC_SCAN`, the `EV_KEY`
press and release, each followed by `SYN_REPORT`, modifiers pressed around the keys that need
them, GS sent as Ctrl+], Alt+numpad 0029 or a stand-in key, and a terminator key. Streams are
data (tests replay them through the decoder); where `/dev/uinput` exists, `UinputHidScanner`
types them into a real kernel input device that the driver reads like hardware.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Final, Literal

import evdev
from evdev import ecodes as e

from drivers.keymap import Keymap, Stroke

GS: Final = "\x1d"
GsMode = Literal["ctrl", "altnum", "key"]

_ALT_DIGITS: Final = [getattr(e, f"KEY_KP{d}") for d in range(10)]


@dataclass(frozen=True, slots=True)
class TimedEvent:
    """One evdev event and when the scanner sent it (seconds)."""

    event: evdev.InputEvent
    at: float


class VirtualHidScanner:
    """Produces the event streams of a keyboard-wedge scanner typing on `keymap`'s layout."""

    def __init__(
        self,
        keymap: Keymap,
        *,
        key_interval: float = 0.001,
        gs_mode: GsMode = "ctrl",
        gs_key: int = e.KEY_F8,
        terminator: int | None = e.KEY_ENTER,
        start: float = 1_000.0,
    ) -> None:
        self.keymap = keymap
        self.key_interval = key_interval
        self.gs_mode = gs_mode
        self.gs_key = gs_key
        self.terminator = terminator
        self.clock = start

    def events(self, code: str) -> list[TimedEvent]:
        """The events for one scan of `code` (AIM prefix, if wanted, is part of `code`)."""
        out: list[TimedEvent] = []
        for char in code:
            out.extend(self._char(char))
        if self.terminator is not None:
            out.extend(self._tap(self.terminator))
        return out

    def pause(self, seconds: float) -> None:
        """Let time pass between scans (for inter-key timeout scenarios)."""
        self.clock += seconds

    def _char(self, char: str) -> Iterator[TimedEvent]:
        if char == GS:
            if self.gs_mode == "ctrl":
                yield from self._chord([e.KEY_LEFTCTRL], e.KEY_RIGHTBRACE)
            elif self.gs_mode == "altnum":
                yield from self._key(e.KEY_LEFTALT, 1)
                for digit in "0029":
                    yield from self._tap(_ALT_DIGITS[int(digit)])
                yield from self._key(e.KEY_LEFTALT, 0)
            else:
                yield from self._tap(self.gs_key)
            return
        stroke = self.keymap.strokes_for(char)
        if stroke is None:
            raise ValueError(f"{char!r} cannot be typed on layout {self.keymap.name}")
        if self.keymap.is_dead(stroke):
            # A scanner types a dead-key character as the dead key followed by space.
            yield from self._stroke(stroke)
            yield from self._tap(e.KEY_SPACE)
            return
        yield from self._stroke(stroke)

    def _stroke(self, stroke: Stroke) -> Iterator[TimedEvent]:
        mods = ([e.KEY_LEFTSHIFT] if stroke.shift else []) + (
            [e.KEY_RIGHTALT] if stroke.altgr else []
        )
        yield from self._chord(mods, stroke.code)

    def _chord(self, mods: Sequence[int], code: int) -> Iterator[TimedEvent]:
        for m in mods:
            yield from self._key(m, 1)
        yield from self._tap(code)
        for m in reversed(mods):
            yield from self._key(m, 0)

    def _tap(self, code: int) -> Iterator[TimedEvent]:
        yield from self._key(code, 1)
        yield from self._key(code, 0)

    def _key(self, code: int, value: int) -> Iterator[TimedEvent]:
        self.clock += self.key_interval / 2  # press and release each take half a key interval
        sec, usec = int(self.clock), round((self.clock % 1) * 1_000_000) % 1_000_000
        yield TimedEvent(
            evdev.InputEvent(sec, usec, e.EV_MSC, e.MSC_SCAN, 0x70000 + code), self.clock
        )
        yield TimedEvent(evdev.InputEvent(sec, usec, e.EV_KEY, code, value), self.clock)
        yield TimedEvent(evdev.InputEvent(sec, usec, e.EV_SYN, e.SYN_REPORT, 0), self.clock)


def syn_dropped(at: float) -> TimedEvent:
    """The event the kernel inserts when a reader fell behind and events were lost."""
    sec, usec = int(at), int((at % 1) * 1_000_000)
    return TimedEvent(evdev.InputEvent(sec, usec, e.EV_SYN, e.SYN_DROPPED, 0), at)


class UinputHidScanner:
    """A real kernel input device (via /dev/uinput) that types like a wedge scanner."""

    def __init__(self, keymap: Keymap, name: str = "tracescan virtual scanner") -> None:
        self.sim = VirtualHidScanner(keymap, key_interval=0.0)
        keys = [c for c in e.KEY if isinstance(c, int) and 0 < c < 256]
        self.device = evdev.UInput(
            {e.EV_KEY: keys, e.EV_MSC: [e.MSC_SCAN]}, name=name, vendor=0x0C2E, product=0x0B61
        )

    @property
    def path(self) -> str:
        """The event device node the kernel created (what the driver opens)."""
        return str(self.device.device.path) if self.device.device else ""

    def scan(self, code: str) -> None:
        """Type `code` and the terminator into the kernel, as the hardware would."""
        for timed in self.sim.events(code):
            ev = timed.event
            self.device.write(ev.type, ev.code, ev.value)

    def close(self) -> None:
        """Remove the device (an unplug, as far as readers can tell)."""
        self.device.close()
