"""A simulated camera over the counter: barcodes rendered into frames and video files.

Symbols are generated with zxing-cpp's writer (GS1 content with real FNC1, not a display
string) and placed on a pack-coloured background in a 1280×720 frame, then degraded the way a
counter camera degrades them: sensor noise, focus blur, the pack held at an angle, dim light or
a glare gradient. `write_video` strings frames into a file that `CameraScanner` reads like a
camera.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

import cv2
import numpy as np
import numpy.typing as npt
import zxingcpp

Frame = npt.NDArray[np.uint8]
Kind = Literal["code128", "gs1-code128", "gs1-datamatrix", "qr", "ean13"]

_FORMAT: Final = {
    "code128": zxingcpp.BarcodeFormat.Code128,
    "gs1-code128": zxingcpp.BarcodeFormat.Code128,
    "gs1-datamatrix": zxingcpp.BarcodeFormat.DataMatrix,
    "qr": zxingcpp.BarcodeFormat.QRCode,
    "ean13": zxingcpp.BarcodeFormat.EAN13,
}
_MODULE_PX: Final = {"code128": 3, "gs1-code128": 2, "gs1-datamatrix": 6, "qr": 6, "ean13": 3}


def render_symbol(content: str, kind: Kind, module_px: int | None = None) -> Frame:
    """The symbol as a grey image with quiet zones; GS1 kinds take `(01)…(21)…` content."""
    gs1 = kind.startswith("gs1-")
    barcode = (
        zxingcpp.create_barcode(content, _FORMAT[kind], gs1=gs1)
        if gs1
        else zxingcpp.create_barcode(content, _FORMAT[kind])
    )
    image = np.asarray(barcode.to_image(scale=module_px or _MODULE_PX[kind]), dtype=np.uint8)
    if kind in ("code128", "gs1-code128", "ean13"):
        # Linear symbols are printed taller than one module row.
        image = np.ascontiguousarray(np.repeat(image[:1], max(80, image.shape[1] // 4), axis=0))
    return image


@dataclass(frozen=True, slots=True)
class Variant:
    """How the camera sees the pack."""

    name: str = "clean"
    noise: float = 0.0  # grey-level standard deviation of sensor noise
    blur: int = 0  # Gaussian kernel size (odd), 0 = in focus
    rotation: float = 0.0  # degrees
    gain: float = 1.0  # <1 dim, >1 bright
    glare: float = 0.0  # strength of a left-to-right lighting gradient


VARIANTS: Final = (
    Variant("clean"),
    Variant("noise", noise=12.0),
    Variant("blur", blur=5),
    Variant("rotate5", rotation=5.0),
    Variant("rotate90", rotation=90.0),
    Variant("dim", gain=0.45),
    Variant("glare", glare=0.5),
    Variant("noise+blur+rotate3", noise=8.0, blur=3, rotation=3.0),
)


def blank_frame(width: int = 1280, height: int = 720, shade: int = 120) -> Frame:
    """An empty counter: no pack in view (BGR, as cameras deliver)."""
    return np.full((height, width, 3), shade, dtype=np.uint8)


def compose(
    symbol: Frame,
    variant: Variant = VARIANTS[0],
    *,
    width: int = 1280,
    height: int = 720,
    centre: tuple[int, int] | None = None,
    seed: int = 0,
) -> Frame:
    """A BGR frame showing `symbol` on a pack, as seen under `variant`."""
    rng = np.random.default_rng(seed)
    canvas = np.full((height, width), 120, dtype=np.float32)
    h, w = symbol.shape
    pad = 30
    pack = np.full((h + 2 * pad, w + 2 * pad), 235, dtype=np.float32)  # white label on a box
    pack[pad : pad + h, pad : pad + w] = symbol
    if variant.rotation:
        ph, pw = pack.shape
        m = cv2.getRotationMatrix2D((pw / 2, ph / 2), variant.rotation, 1.0)
        cos, sin = abs(m[0, 0]), abs(m[0, 1])
        nw, nh = int(ph * sin + pw * cos), int(ph * cos + pw * sin)
        m[0, 2] += nw / 2 - pw / 2
        m[1, 2] += nh / 2 - ph / 2
        pack = cv2.warpAffine(pack, m, (nw, nh), borderValue=120.0)
    ph, pw = pack.shape
    if ph > height or pw > width:
        raise ValueError(f"symbol {w}x{h} does not fit a {width}x{height} frame")
    cx, cy = centre or (width // 2, height // 2)
    x0 = min(max(cx - pw // 2, 0), width - pw)
    y0 = min(max(cy - ph // 2, 0), height - ph)
    canvas[y0 : y0 + ph, x0 : x0 + pw] = pack
    if variant.blur:
        canvas = np.asarray(cv2.GaussianBlur(canvas, (variant.blur, variant.blur), 0), np.float32)
    canvas *= variant.gain
    if variant.glare:
        canvas += np.linspace(0, 255 * variant.glare, width, dtype=np.float32)[None, :]
    if variant.noise:
        canvas += rng.normal(0, variant.noise, canvas.shape).astype(np.float32)
    grey = np.clip(canvas, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR))


@dataclass(frozen=True, slots=True)
class Showing:
    """One pack held in view for `frames` frames, then `gap` empty frames."""

    content: str
    kind: Kind
    frames: int = 10
    gap: int = 5
    variant: Variant = VARIANTS[0]


def timeline_frames(
    showings: Iterable[Showing], width: int = 1280, height: int = 720
) -> list[Frame]:
    """The frames of a counter session: each pack held in view, then taken away."""
    frames: list[Frame] = []
    for i, s in enumerate(showings):
        symbol = render_symbol(s.content, s.kind)
        for f in range(s.frames):
            # The hand moves a little between frames.
            centre = (width // 2 + (f % 3) * 4, height // 2 + (f % 2) * 3)
            frames.append(
                compose(
                    symbol, s.variant, width=width, height=height, centre=centre, seed=i * 1000 + f
                )
            )
        frames.extend(blank_frame(width, height) for _ in range(s.gap))
    return frames


def write_video(path: Path, frames: Sequence[Frame], fps: float = 25.0) -> Path:
    """Write frames as a Motion-JPEG AVI (high quality, seekable, readable by any OpenCV)."""
    if not frames:
        raise ValueError("no frames to write")
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (w, h))
    try:
        if not writer.isOpened():
            raise OSError(f"OpenCV cannot write {path}")
        writer.set(cv2.VIDEOWRITER_PROP_QUALITY, 95)
        for frame in frames:
            writer.write(frame)
    finally:
        writer.release()
    return path


#: The `video` command's counter session: three packs a dispensing counter accepts (a unit
#: trace code, a GS1 DataMatrix pack, an MA code), each held in view once. Every one must be
#: valid (tests/test_demo.py): a refusal here reads as a camera fault to a newcomer.
COUNTER_SESSION: Final = (
    Showing("81234567890123456789", "code128"),
    Showing("(01)06912345678902(17)301231(10)AB12(21)SN123", "gs1-datamatrix"),
    Showing("MA.156.M0.100001.1234567.S12345", "qr", variant=VARIANTS[3]),
)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m hardware_sim.camera_scene video OUT`: film a counter session.

    (The HID calibration barcode is printed by `tracescan calibrate barcode`.)
    """
    import argparse  # noqa: PLC0415 - command line only

    p = argparse.ArgumentParser(prog="python -m hardware_sim.camera_scene")
    sub = p.add_subparsers(dest="what", required=True)
    v = sub.add_parser("video", help="a counter session: three packs shown in turn (MJPG AVI)")
    v.add_argument("out", type=Path)
    args = p.parse_args(argv)
    write_video(args.out, timeline_frames(COUNTER_SESSION))
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
