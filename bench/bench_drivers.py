"""Drivers: camera pipeline fps at 1280×720 vs bare zxing-cpp, decode success, HID events/s.

Camera: the same rendered frames go through (a) bare `zxingcpp.read_barcodes(frame)` with the
target formats and (b) our `FramePipeline.process` (grey conversion, decode, GS1 handling,
hold-off). Ratio = ours fps / bare fps (target ≥ 0.9, and ≥ 30 fps). Decode success is counted
over the variant set (noise, blur, rotation, lighting) for both decoders, and the cost of an
empty frame is shown. HID: evdev events per second through the keystroke decoder vs a bare
loop that only reads the same events' fields.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence

import zxingcpp

from drivers.camera import (
    DEFAULT_FORMATS,
    FrameOptions,
    FramePipeline,
    PyzbarDecoder,
    ZxingDecoder,
    prepare,
)
from drivers.keymap import DE
from drivers.keystrokes import KeystrokeDecoder
from hardware_sim.camera_scene import VARIANTS, Frame, Kind, blank_frame, compose, render_symbol
from hardware_sim.hid_scanner import VirtualHidScanner

CODES: list[tuple[str, Kind]] = [
    ("81234567890123456789", "code128"),
    ("(01)06912345678902(17)301231(10)AB12(21)SN123", "gs1-datamatrix"),
    ("(01)06912345678902(10)AB12(21)SN7", "gs1-code128"),
    ("MA.156.M0.100001.1234567.S12345", "qr"),
]


def _fps(run: Callable[[Frame], object], frames: Sequence[Frame], rounds: int = 3) -> float:
    best = 0.0
    for _ in range(rounds):
        t = time.perf_counter()
        for f in frames:
            run(f)
        best = max(best, len(frames) / (time.perf_counter() - t))
    return best


def camera() -> int:
    """Camera pipeline vs bare zxing-cpp on the same 1280×720 frames."""
    frames = [compose(render_symbol(c, k), VARIANTS[0], seed=i) for i, (c, k) in enumerate(CODES)]
    frames = frames * 10
    formats = ZxingDecoder(DEFAULT_FORMATS).formats
    greys = [prepare(f, FrameOptions()) for f in frames]
    pipeline = FramePipeline(ZxingDecoder(), holdoff=1.5)
    clock = iter(range(10**9))
    runs: dict[str, Callable[[Frame], object]] = {
        "bare": lambda f: zxingcpp.read_barcodes(f, formats=formats),
        "ours": lambda f: pipeline.process(f, next(clock) * 10.0),
    }
    best = {"bare": 0.0, "ours": 0.0, "bare_grey": 0.0}
    # Interleaved rounds, best of each: the VM's speed drifts, so no side gets a warmer CPU.
    for _ in range(5):
        best["bare"] = max(best["bare"], _fps(runs["bare"], frames, rounds=1))
        best["ours"] = max(best["ours"], _fps(runs["ours"], frames, rounds=1))
        # A stricter floor: zxing on frames already grey (conversion not counted at all).
        best["bare_grey"] = max(best["bare_grey"], _fps(runs["bare"], greys, rounds=1))
    bare, ours, bare_grey = best["bare"], best["ours"], best["bare_grey"]
    print("camera, 1280x720 BGR frames, one code each (Code128, GS1 DM, GS1-128, QR)")
    print(f"  bare zxingcpp.read_barcodes (target formats): {bare:7.1f} fps")
    print(f"  our FramePipeline (grey, decode, GS1, hold-off): {ours:7.1f} fps")
    print(f"  bare read_barcodes on pre-grey frames (no conversion): {bare_grey:7.1f} fps")
    print(f"  ratio ours/bare: {ours / bare:.2f}  (target >= 0.9, >= 30 fps)")
    print(f"  ratio ours/bare-on-grey: {ours / bare_grey:.2f}")

    for name, decoder in (("zxing", ZxingDecoder()), ("pyzbar", PyzbarDecoder())):
        ok = total = 0
        per_variant: dict[str, int] = {}
        times: list[float] = []
        for v in VARIANTS:
            for content, kind in CODES:
                if name == "pyzbar" and kind == "gs1-datamatrix":
                    continue  # zbar cannot read DataMatrix at all
                frame = compose(render_symbol(content, kind), v, seed=total)
                p = FramePipeline(decoder, holdoff=0)
                t = time.perf_counter()
                found = p.process(frame, 0.0)
                times.append((time.perf_counter() - t) * 1000)
                total += 1
                if len(found) == 1:
                    ok += 1
                    per_variant[v.name] = per_variant.get(v.name, 0) + 1
        blank = FramePipeline(decoder, holdoff=0)
        empty = [blank_frame()] * 10
        t = time.perf_counter()
        for f in empty:
            blank.process(f, 0.0)
        empty_ms = (time.perf_counter() - t) * 100
        print(
            f"  {name}: decoded {ok}/{total} variant frames; median {statistics.median(times):.1f} ms"
            f"/frame; empty frame {empty_ms:.1f} ms"
        )
        print(f"    per variant: {per_variant}")
    return 0 if ours / bare >= 0.9 and ours >= 30 else 1


def hid() -> int:
    """Events per second through the keystroke decoder."""
    sim = VirtualHidScanner(DE, key_interval=0.001)
    codes = [f"8{n:019d}" for n in range(300)] + ["]d2010691234567890421ABC\x1d10LOT"] * 100
    stream = [(t.event, t.at) for c in codes for t in sim.events(c)]

    def bare() -> None:
        n = 0
        for ev, _ in stream:
            n += ev.type + ev.code + ev.value

    def ours() -> None:
        d = KeystrokeDecoder(DE)
        out = []
        for ev, at in stream:
            out += d.feed(ev, at)
        assert out == codes

    best_bare = min(_timed(bare) for _ in range(3))
    best_ours = min(_timed(ours) for _ in range(3))
    print(f"hid: {len(stream)} evdev events ({len(codes)} scans, de layout)")
    print(f"  bare loop over event fields: {len(stream) / best_bare / 1e6:6.2f} M events/s")
    print(f"  KeystrokeDecoder.feed:       {len(stream) / best_ours / 1e6:6.2f} M events/s")
    print(
        f"  ratio ours/bare: {best_bare / best_ours:.3f}; a scanner types ~1-3k events/s, "
        f"headroom x{len(stream) / best_ours / 3000:.0f}"
    )
    return 0


def _timed(fn: Callable[[], None]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> int:
    """Run the camera and HID driver benchmarks."""
    return camera() | hid()
