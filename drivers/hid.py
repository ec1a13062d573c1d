"""Keyboard-wedge (USB HID) scanners read through evdev: the thin device shell.

The scanner is selected by event device path, by its `/dev/input/by-id` name, or by
`vendor:product` (hex). It is grabbed exclusively (EVIOCGRAB) so its keystrokes never reach
the console or another application. Decoding is `drivers.keystrokes` (pure); this module only
finds, opens, reads and re-finds the device. Unplug (ENODEV), a device that is not there yet,
and any other fault end in a retry with backoff, never in the daemon stopping: the device is
re-found by polling, which works without udev in containers and on minimal images.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import os
import select
import sys
import threading
import time
from pathlib import Path
from typing import Final

import evdev
from evdev import ecodes as e

from drivers.keymap import CALIBRATION_TEXT, Keymap, learn_keymap
from drivers.keystrokes import KeystrokeDecoder, KeystrokeOptions
from drivers.scan import RawScan, ScanSink

log = logging.getLogger(__name__)

BY_ID_DIR: Final = Path("/dev/input/by-id")
INPUT_DIR: Final = Path("/dev/input")
_IDLE_WAIT: Final = 0.1


class DeviceNotFound(Exception):
    """No input device matches the selector (yet)."""


def key_code(name: str) -> int:
    """`"enter"`, `"KEY_ENTER"` or `"kp_enter"` → the evdev key code; ValueError if unknown."""
    upper = name.strip().upper()
    full = upper if upper.startswith("KEY_") else f"KEY_{upper}"
    for candidate in (full.replace("KP_", "KP"), full):
        if candidate in e.ecodes:
            return int(e.ecodes[candidate])
    raise ValueError(f"{name!r} is not a key name (e.g. enter, kp_enter, tab, f8)")


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


class HidScanner(threading.Thread):
    """Reads one keyboard-wedge scanner until `stop` is set, re-finding it after unplug."""

    def __init__(
        self,
        name: str,
        selector: str,
        sink: ScanSink,
        stop: threading.Event,
        *,
        keymap: Keymap,
        options: KeystrokeOptions | None = None,
        grab: bool = True,
        backoff_max: float = 5.0,
        by_id_dir: Path = BY_ID_DIR,
    ) -> None:
        super().__init__(name=f"scanner-{name}", daemon=True)
        self.source = name
        self.selector = selector
        self.sink = sink
        self.stop = stop
        self.keymap = keymap
        self.options = options or KeystrokeOptions()
        self.grab = grab
        self.backoff_max = backoff_max
        self.by_id_dir = by_id_dir
        self.connected = threading.Event()
        #: Open attempts that failed (not found, unplugged, permission) — for diagnostics.
        self.failures = 0

    def run(self) -> None:
        """Open, read, and on any failure wait and re-find the device; never raises."""
        delay = 0.1
        while not self.stop.is_set():
            try:
                self._read_device(resolve_device(self.selector, by_id_dir=self.by_id_dir))
                delay = 0.1
            except (DeviceNotFound, OSError) as exc:
                self.failures += 1
                if self.connected.is_set():
                    log.warning(
                        "scanner %s: %s lost (%s); waiting for it", self.source, self.selector, exc
                    )
                else:
                    log.debug("scanner %s: cannot open %s (%s)", self.source, self.selector, exc)
                self.connected.clear()
                self.stop.wait(delay)
                delay = min(delay * 2, self.backoff_max)
            except Exception:  # a driver fault must never end the daemon
                log.exception("scanner %s: unexpected error; reopening the device", self.source)
                self.connected.clear()
                self.stop.wait(1.0)

    def _read_device(self, path: str) -> None:
        decoder = KeystrokeDecoder(self.keymap, self.options)
        with contextlib.closing(evdev.InputDevice(path)) as dev:
            if self.grab:
                dev.grab()  # EBUSY if another program holds it: reported and retried
            self._resync(dev, decoder)
            self.connected.set()
            log.info("scanner %s: reading %s (%s)", self.source, path, dev.name)
            try:
                self._read_loop(dev, decoder)
            finally:
                if self.grab:
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
                    self.sink(RawScan(text, self.source, wall))

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


def main(argv: list[str] | None = None) -> int:
    """`python -m drivers.hid calibrate DEVICE OUT.json`: learn a scanner's keyboard layout."""
    p = argparse.ArgumentParser(prog="python -m drivers.hid")
    sub = p.add_subparsers(dest="what", required=True)
    c = sub.add_parser("calibrate", help="scan the calibration barcode to learn the layout")
    c.add_argument("device", help="event device path, /dev/input/by-id name, or vvvv:pppp")
    c.add_argument("out", type=Path, help="where to write the keymap (layout = 'calibrated')")
    args = p.parse_args(argv)
    print(
        f"scan the calibration barcode now; it must read exactly:\n{CALIBRATION_TEXT}", flush=True
    )
    keymap = calibrate(args.device, args.out)
    print(f"learnt {len(keymap.table)} keys; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
