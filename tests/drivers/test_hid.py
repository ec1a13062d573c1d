"""The HID device shell: device selection, surviving absent devices, and a real uinput device.

The uinput test needs `/dev/uinput` (and permission to use it); CI machines for this project
have neither `/dev/uinput` nor loadable modules, so there it is skipped with that reason and
the decoder is covered on event streams in test_keystrokes.py.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from drivers.hid import DeviceNotFound, HidOptions, HidScanner, resolve_device
from drivers.keymap import DE, US
from drivers.reconnect import ReconnectPolicy
from drivers.scan import RawScan
from hardware_sim.hid_scanner import UinputHidScanner

FAST = ReconnectPolicy(initial=0.02, maximum=0.02)


def test_device_selected_by_path_or_by_id_name(tmp_path: Path) -> None:
    by_id = tmp_path / "by-id"
    by_id.mkdir()
    node = tmp_path / "event7"
    node.write_bytes(b"")
    (by_id / "usb-Honeywell_Scanner-event-kbd").symlink_to(node)
    assert resolve_device("usb-Honeywell_Scanner-event-kbd", by_id_dir=by_id) == str(node)
    assert resolve_device(str(by_id / "usb-Honeywell_Scanner-event-kbd")) == str(node)
    with pytest.raises(DeviceNotFound, match="does not exist"):
        resolve_device(str(tmp_path / "event9"))
    with pytest.raises(DeviceNotFound, match="no usb-Other"):
        resolve_device("usb-Other-event-kbd", by_id_dir=by_id)
    with pytest.raises(DeviceNotFound, match="USB id 0c2e:0b61"):
        resolve_device("0c2e:0b61", by_id_dir=by_id, input_dir=tmp_path / "empty")


def test_absent_or_broken_device_never_ends_the_driver_thread(tmp_path: Path) -> None:
    # A path that exists but is not an input device (EINVAL/ENOTTY on open) and one that does
    # not exist: both are retried until stop, never raised out of the thread.
    not_input = tmp_path / "event0"
    not_input.write_bytes(b"")
    stop = threading.Event()
    scans: list[RawScan] = []
    threads = [
        HidScanner(HidOptions("h1", str(not_input), keymap=US, reconnect=FAST), scans.append, stop),
        HidScanner(
            HidOptions("h2", str(tmp_path / "gone"), keymap=DE, reconnect=FAST), scans.append, stop
        ),
    ]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 5
    while any(t.failures < 3 for t in threads) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert all(t.is_alive() for t in threads)
    assert all(t.failures >= 3 for t in threads)
    # There but not a keyboard: present, cannot be opened. Gone: not present.
    broken, gone = (t.state.snapshot() for t in threads)
    assert (broken.present, broken.open) == (True, False)
    assert (gone.present, gone.open) == (False, False)
    assert gone.last_error is not None
    assert "does not exist" in gone.last_error
    stop.set()
    for t in threads:
        t.join(timeout=2)
        assert not t.is_alive()
    assert scans == []


def _uinput_usable() -> bool:
    return os.path.exists("/dev/uinput") and os.access("/dev/uinput", os.W_OK)


@pytest.mark.skipif(
    not _uinput_usable(),
    reason="needs a writable /dev/uinput; this machine has no uinput module (see MEASURED.md)",
)
def test_real_uinput_scanner_is_grabbed_read_and_survives_unplug() -> None:
    stop = threading.Event()
    scans: list[RawScan] = []
    sim = UinputHidScanner(DE)
    options = HidOptions("wedge", sim.path, keymap=DE, reconnect=ReconnectPolicy(maximum=0.1))
    driver = HidScanner(options, scans.append, stop)
    driver.start()
    try:
        assert driver.connected.wait(5)
        sim.scan("]d2010691234567890421ABC\x1d10LOT")
        deadline = time.monotonic() + 5
        while not scans and time.monotonic() < deadline:
            time.sleep(0.01)
        assert [s.text for s in scans] == ["]d2010691234567890421ABC\x1d10LOT"]
        sim.close()  # unplug: ENODEV in the reader
        time.sleep(0.3)
        assert driver.is_alive()
    finally:
        stop.set()
        driver.join(timeout=2)
