"""Keyboard-wedge (USB HID) scanners read through evdev: the thin device shell.

The scanner is selected by event device path, by its `/dev/input/by-id` name, or by
`vendor:product` (hex). It is grabbed exclusively (EVIOCGRAB) so its keystrokes never reach
the console or another application. Decoding is `drivers.keystrokes` (pure); this module only
finds, opens, reads and re-finds the device. Unplug (ENODEV), a device that is not there yet,
and any other fault end in a retry with backoff (drivers.reconnect), never in the daemon
stopping: the device is re-found by polling, which works without udev in containers and on
minimal images. `calibrate` learns a scanner's layout from one scan (`tracescan calibrate`).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import evdev
from evdev import ecodes as e

from drivers.keymap import CALIBRATION_TEXT, US, Keymap, learn_keymap
from drivers.keystrokes import KeystrokeDecoder, KeystrokeOptions
from drivers.reconnect import DEFAULT_RECONNECT, ReconnectPolicy, ScannerThread
from drivers.scan import ScanSink

log = logging.getLogger(__name__)

BY_ID_DIR: Final = Path("/dev/input/by-id")
INPUT_DIR: Final = Path("/dev/input")
_IDLE_WAIT: Final = 0.1
_TYPING: Final = KeystrokeOptions()


class DeviceNotFound(Exception):
    """No input device matches the selector (yet)."""


def resolve_device(
    selector: str, *, by_id_dir: Path = BY_ID_DIR, input_dir: Path = INPUT_DIR
) -> str:
    """The event device path that `selector` names right now; `DeviceNotFound` otherwise.

    - a path (`/dev/input/event3`, `/dev/input/by-id/usb-...-event-kbd`) is used as is;
    - a bare name is looked up in `/dev/input/by-id`;
    - `vvvv:pppp` (hex) matches the first keyboard-like device with that USB id.
    """
    if "/" in selector:
        if os.path.exists(selector):
            return os.path.realpath(selector)
        raise DeviceNotFound(f"{selector} does not exist (unplugged?)")
    candidate = by_id_dir / selector
    if candidate.exists():
        return os.path.realpath(candidate)
    vendor_product = _vendor_product(selector)
    if vendor_product is None:
        raise DeviceNotFound(f"no {selector} in {by_id_dir}")
    for path in evdev.list_devices(str(input_dir)):
        try:
            with contextlib.closing(evdev.InputDevice(path)) as dev:
                if (
                    dev.info.vendor,
                    dev.info.product,
                ) == vendor_product and e.EV_KEY in dev.capabilities():
                    return path
        except OSError:
            continue  # vanished or not readable while we looked: not ours
    raise DeviceNotFound(f"no input device with USB id {selector}")


def _vendor_product(selector: str) -> tuple[int, int] | None:
    parts = selector.split(":")
    if len(parts) != 2 or not all(len(p) == 4 for p in parts):
        return None
    try:
        return int(parts[0], 16), int(parts[1], 16)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class HidOptions:
    """One keyboard-wedge scanner: how to find it and how it types."""

    name: str  # the scans' source
    device: str  # event device path, `/dev/input/by-id` name, or `vvvv:pppp` (hex USB id)
    keymap: Keymap = US  # the keyboard layout the scanner types in
    keystrokes: KeystrokeOptions = _TYPING  # end keys, GS keys, inter-key timeout
    grab: bool = True  # exclusive: keystrokes never reach the console
    reconnect: ReconnectPolicy = DEFAULT_RECONNECT
    by_id_dir: Path = BY_ID_DIR

    def __post_init__(self) -> None:
        if not self.device:
            raise ValueError(f"scanner {self.name}: no input device given")
        if not self.keystrokes.end_keys and self.keystrokes.inter_key_timeout <= 0:
            raise ValueError("with no end keys and no inter-key timeout a scan would never end")

    def make_thread(self, sink: ScanSink, stop: threading.Event) -> HidScanner:
        """The (not yet started) driver thread."""
        return HidScanner(self, sink, stop)


class HidScanner(ScannerThread):
    """Reads one keyboard-wedge scanner until `stop` is set, re-finding it after unplug."""

    faults = (DeviceNotFound, OSError)

    def __init__(self, options: HidOptions, sink: ScanSink, stop: threading.Event) -> None:
        super().__init__(options.name, options.device, sink, stop, options.reconnect)
        self.options = options

    def _present(self, error: Exception) -> bool:
        if isinstance(error, DeviceNotFound):
            return False
        return not (isinstance(error, OSError) and error.errno in (errno.ENOENT, errno.ENODEV))

    def _session(self) -> None:
        self._read_device(resolve_device(self.options.device, by_id_dir=self.options.by_id_dir))

    def _read_device(self, path: str) -> None:
        decoder = KeystrokeDecoder(self.options.keymap, self.options.keystrokes)
        with contextlib.closing(evdev.InputDevice(path)) as dev:
            if self.options.grab:
                dev.grab()  # EBUSY if another program holds it: reported and retried
            self._resync(dev, decoder)
            self._opened(f"{path}, {dev.name}")
            try:
                self._read_loop(dev, decoder)
            finally:
                if self.options.grab:
                    try:
                        dev.ungrab()
                    except OSError as exc:
                        if exc.errno != errno.ENODEV:  # already gone: nothing to release
                            log.debug("scanner %s: ungrab: %s", self.source, exc)

    def _read_loop(self, dev: evdev.InputDevice[str], decoder: KeystrokeDecoder) -> None:
        while not self.stop.is_set():
            deadline = decoder.deadline()
            wait = _IDLE_WAIT if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([dev.fd], [], [], min(wait, _IDLE_WAIT))
            now = time.monotonic()
            texts: list[str] = []
            if ready:
                try:
                    for event in dev.read():
                        texts.extend(decoder.feed(event, now))
                        if event.type == e.EV_SYN and event.code == e.SYN_DROPPED:
                            log.warning(
                                "scanner %s: events dropped; partial scan discarded", self.source
                            )
                            self._resync(dev, decoder)
                except BlockingIOError:
                    pass
            texts.extend(decoder.expire(now))
            if texts:
                wall = time.time()
                for text in texts:
                    self._deliver(text, wall)

    def _resync(self, dev: evdev.InputDevice[str], decoder: KeystrokeDecoder) -> None:
        decoder.resync(dev.active_keys(), e.LED_CAPSL in dev.leds())


def calibrate(
    selector: str, out: Path, *, expected: str = CALIBRATION_TEXT, timeout: float = 60.0
) -> Keymap:
    """Grab the scanner, wait for one scan of the calibration barcode, write the learnt keymap."""
    path = resolve_device(selector)
    decoder = KeystrokeDecoder(Keymap("none", {}), KeystrokeOptions(inter_key_timeout=0.5))
    deadline = time.monotonic() + timeout
    with contextlib.closing(evdev.InputDevice(path)) as dev:
        dev.grab()
        try:
            while time.monotonic() < deadline:
                ready, _, _ = select.select([dev.fd], [], [], 0.1)
                now = time.monotonic()
                done = decoder.expire(now)
                if ready:
                    for event in dev.read():
                        done += decoder.feed(event, now)
                if done:
                    keymap = learn_keymap(decoder.last_strokes, expected)
                    out.write_text(keymap.to_json(), encoding="utf-8")
                    return keymap
        finally:
            dev.ungrab()
    raise TimeoutError(f"no calibration scan from {selector} within {timeout:.0f} s")
