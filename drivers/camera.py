"""Camera scanners: frames from OpenCV in, one `RawScan` per pack shown, out.

A camera over the dispensing counter sees the same pack in dozens of consecutive frames; the
`HoldOff` turns that into one scan per pack held in view (a pack taken away and shown again
after the hold-off is a new scan). Decoding is zxing-cpp restricted to the formats drug packs
carry (3–4× faster than all formats, and it reads GS1 DataMatrix, which zbar cannot), or pyzbar
where that is wanted. GS1 content is passed on as the AIM symbology identifier plus the
decoded bytes — FNC1 separators as GS (0x1D) — never zxing's display text, which renders GS
as `<GS>` or brackets.

The pure part (`FramePipeline`: region of interest, downscale, decode, hold-off, with the clock
passed in) is separate from `CameraScanner`, the capture thread, which runs beside the daemon
and never blocks it: the sink is a queue put, and a stalled stream times out and reconnects.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Literal, Protocol, get_args

# OpenCV writes its own `[ WARN:0@0.03] global cap_v4l.cpp:914 ...` lines to stderr on every
# failed open (and more), which breaks the agent's logfmt under journald; our own log line says
# what failed. The variable must be set before the import; setLogLevel covers a cv2 that was
# imported earlier (tests, benchmarks). An operator's own OPENCV_LOG_LEVEL is kept.
os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")

import cv2
import numpy as np
import numpy.typing as npt
import zxingcpp

from drivers.reconnect import ReconnectPolicy, ScannerThread
from drivers.scan import ScanSink

_cv_logging = getattr(getattr(cv2, "utils", None), "logging", None)  # not in every build
if os.environ["OPENCV_LOG_LEVEL"] == "SILENT" and _cv_logging is not None:
    _cv_logging.setLogLevel(_cv_logging.LOG_LEVEL_SILENT)

log = logging.getLogger(__name__)

Frame = npt.NDArray[np.uint8]
DecoderName = Literal["zxing", "pyzbar"]

#: The formats on drug packs: Code 128 (cn20 trace codes, GS1-128), GS1 DataMatrix, QR (MA
#: codes, some trace codes) and EAN-13 (the commodity barcode, recognised to be refused).
DEFAULT_FORMATS: Final = ("code128", "datamatrix", "qr", "ean13")

_ZXING_FORMATS: Final = {
    "code128": zxingcpp.BarcodeFormat.Code128,
    "datamatrix": zxingcpp.BarcodeFormat.DataMatrix,
    "qr": zxingcpp.BarcodeFormat.QRCode,
    "ean13": zxingcpp.BarcodeFormat.EAN13,
    "ean8": zxingcpp.BarcodeFormat.EAN8,
    "databar": zxingcpp.BarcodeFormat.DataBar,
}
FORMATS: Final = tuple(_ZXING_FORMATS)

#: AIM identifiers DOMAIN.md lists for GS1 content, per zxing format. zxing-cpp 3 reports GS1
#: DataMatrix with modifier values other than 2 (e.g. `]d8`); recognition keys on `]d2`.
_GS1_AIM: Final = {"DataMatrix": "]d2", "Code128": "]C1", "QRCode": "]Q3", "DataBar": "]e0"}


@dataclass(frozen=True, slots=True)
class Symbol:
    """One decoded barcode: the payload text and the AIM symbology identifier, if known."""

    text: str
    symbology: str | None

    @property
    def scan_text(self) -> str:
        """What a scanner sending AIM ids would transmit: identifier then payload."""
        return (self.symbology or "") + self.text


class FrameDecoder(Protocol):
    """Decodes every barcode in one grey frame."""

    def decode(self, gray: Frame) -> list[Symbol]:
        """All symbols found in `gray` (empty list when none)."""

    def close(self) -> None:
        """Let go of the library's objects (the decoder is not used again)."""


class ZxingDecoder:
    """zxing-cpp, restricted to `formats` for speed."""

    def __init__(self, formats: Sequence[str] = DEFAULT_FORMATS) -> None:
        unknown = [f for f in formats if f not in _ZXING_FORMATS]
        if unknown:
            raise ValueError(f"unknown barcode formats {unknown}; use {', '.join(FORMATS)}")
        self.formats = zxingcpp.BarcodeFormats([_ZXING_FORMATS[f] for f in formats])

    def close(self) -> None:
        """Drop the zxing-cpp objects: nanobind prints "leaked instance" for every one still
        alive when the interpreter exits. The decoder cannot decode after this."""
        if hasattr(self, "formats"):
            del self.formats

    def decode(self, gray: Frame) -> list[Symbol]:
        """All symbols found in `gray`, payload from the decoded bytes."""
        out: list[Symbol] = []
        for bc in zxingcpp.read_barcodes(
            gray, formats=self.formats, text_mode=zxingcpp.TextMode.Plain
        ):
            sid = bc.symbology_identifier or None
            if bc.content_type == zxingcpp.ContentType.GS1:
                sid = _GS1_AIM.get(bc.format.name, sid)
            out.append(Symbol(zxing_payload(bc.text, bc.bytes), sid))
        return out


def zxing_payload(text: str, raw: bytes) -> str:
    """The payload of a zxing-cpp read, decoded by its symbology's rules.

    zxing-cpp's plain text applies the symbol's ECI designators and, without one, the
    symbology's default character set (ISO 8859-1 for Code 128 and DataMatrix), keeping GS1's
    FNC1 as GS (0x1D). Reading the bytes as UTF-8 instead turns Latin-1 and ECI payloads into
    replacement characters. Where zxing-cpp gives no text (an ECI it does not know), the bytes
    are kept one character per byte (Latin-1), so nothing is lost or invented.

    >>> zxing_payload("", bytes([0xE1, 0x41]))
    'áA'
    """
    return text if text or not raw else raw.decode("latin-1")


class PyzbarDecoder:
    """zbar through pyzbar: 1-D codes and QR only (zbar cannot read DataMatrix)."""

    _SYMBOLS: Final = {
        "code128": "CODE128",
        "qr": "QRCODE",
        "ean13": "EAN13",
        "ean8": "EAN8",
        "databar": "DATABAR",
    }

    def __init__(self, formats: Sequence[str] = DEFAULT_FORMATS) -> None:
        from pyzbar import pyzbar  # noqa: PLC0415 - loads libzbar; only when selected

        self._pyzbar = pyzbar
        self.symbols = [
            getattr(pyzbar.ZBarSymbol, self._SYMBOLS[f]) for f in formats if f in self._SYMBOLS
        ]
        if "datamatrix" in formats:
            log.warning('pyzbar cannot read DataMatrix; use decoder = "zxing" for GS1 DataMatrix')

    def decode(self, gray: Frame) -> list[Symbol]:
        """All symbols zbar finds in `gray`."""
        out: list[Symbol] = []
        for d in self._pyzbar.decode(gray, symbols=self.symbols):
            # pyzbar does not expose zbar's GS1 modifier; only EAN-13's identifier is certain.
            sid = "]E0" if d.type == "EAN13" else None
            # zbar transcodes QR text to UTF-8 itself; 1-D symbols come as their bytes, whose
            # default character set is ISO 8859-1.
            charset = "utf-8" if d.type == "QRCODE" else "latin-1"
            out.append(Symbol(bytes(d.data).decode(charset, errors="replace"), sid))
        return out

    def close(self) -> None:
        """Nothing to let go: zbar's objects live only during `decode`."""


def make_decoder(
    name: DecoderName = "zxing", formats: Sequence[str] = DEFAULT_FORMATS
) -> FrameDecoder:
    """The decoder called `name`, restricted to `formats`."""
    if name == "pyzbar":
        return PyzbarDecoder(formats)
    return ZxingDecoder(formats)


class HoldOff:
    """One scan per pack held in view: a code is reported again only after it has been out of
    view (not decoded) for longer than `seconds`."""

    def __init__(self, seconds: float = 1.5) -> None:
        self.seconds = seconds
        self._last_seen: dict[str, float] = {}

    def admit(self, texts: Iterable[str], now: float) -> list[str]:
        """The texts seen at `now` that are new scans, in the order given."""
        fresh: list[str] = []
        for text in texts:
            last = self._last_seen.get(text)
            if (last is None or now - last > self.seconds) and text not in fresh:
                fresh.append(text)
            self._last_seen[text] = now
        if len(self._last_seen) > 64:  # forget codes long out of view: memory stays bounded
            self._last_seen = {t: s for t, s in self._last_seen.items() if now - s <= self.seconds}
        return fresh


@dataclass(frozen=True, slots=True)
class FrameOptions:
    """Where in the frame to look and at what resolution."""

    #: x, y, width, height in the camera's pixels; None = the whole frame.
    roi: tuple[int, int, int, int] | None = None
    #: Scale factor applied after the ROI (0.5 = half width and height); 1 = as captured.
    downscale: float = 1.0


def prepare(frame: Frame, options: FrameOptions) -> Frame:
    """Crop, grey and scale a captured frame for decoding."""
    if options.roi is not None:
        x, y, w, h = options.roi
        frame = frame[y : y + h, x : x + w]
    if frame.ndim == 3:
        frame = np.asarray(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), dtype=np.uint8)
    if options.downscale != 1.0:
        scaled = cv2.resize(
            frame, None, fx=options.downscale, fy=options.downscale, interpolation=cv2.INTER_AREA
        )
        frame = np.asarray(scaled, dtype=np.uint8)
    return frame


class FramePipeline:
    """Frame + clock in, new symbols out: the pure part of the camera driver."""

    def __init__(
        self,
        decoder: FrameDecoder,
        options: FrameOptions | None = None,
        holdoff: float = 1.5,
    ) -> None:
        self.decoder = decoder
        self.options = options or FrameOptions()
        self.holdoff = HoldOff(holdoff)

    def process(self, frame: Frame, now: float) -> list[Symbol]:
        """Decode one frame captured at `now`; return only symbols that are new scans."""
        symbols = self.decoder.decode(prepare(frame, self.options))
        by_text = {s.scan_text: s for s in symbols}
        return [by_text[t] for t in self.holdoff.admit(by_text, now)]

    def close(self) -> None:
        """Release the decoder's library objects."""
        self.decoder.close()


def parse_source(port: str) -> int | str:
    """`"0"` → camera index 0; anything else is a file path or a stream URL."""
    return int(port) if port.isascii() and port.isdigit() else port


#: Opening a camera or a stream is slower than a tty: start retrying a little later.
_CAMERA_RECONNECT: Final = ReconnectPolicy(initial=0.2)


@dataclass(frozen=True, slots=True)
class CameraOptions:
    """One camera: where its frames come from and what to look for in them."""

    name: str  # the scans' source
    source: str  # a camera index ("0"), a video file or a stream URL
    decoder: DecoderName = "zxing"
    formats: tuple[str, ...] = DEFAULT_FORMATS
    frame: FrameOptions = FrameOptions()  # region of interest and downscale
    holdoff: float = 1.5  # seconds out of view before the same code is a new scan
    fps: float = 0.0  # frames decoded per second at most (0 = every frame)
    reconnect: ReconnectPolicy = _CAMERA_RECONNECT

    def __post_init__(self) -> None:
        if not self.source:
            raise ValueError(f"scanner {self.name}: no camera source given")
        if self.decoder not in get_args(DecoderName):
            raise ValueError(f"decoder {self.decoder!r} is not one of zxing, pyzbar")
        unknown = [f for f in self.formats if f not in _ZXING_FORMATS]
        if unknown or not self.formats:
            raise ValueError(f"unknown barcode formats {unknown}; use {', '.join(FORMATS)}")
        if self.holdoff < 0 or self.fps < 0 or not 0 < self.frame.downscale <= 1:
            raise ValueError("holdoff and fps must be >= 0 and downscale in (0, 1]")

    def pipeline(self) -> FramePipeline:
        """The pure frame pipeline these options describe."""
        return FramePipeline(make_decoder(self.decoder, self.formats), self.frame, self.holdoff)

    def make_thread(self, sink: ScanSink, stop: threading.Event) -> CameraScanner:
        """The (not yet started) driver thread."""
        return CameraScanner(self, sink, stop)


class CameraScanner(ScannerThread):
    """Captures from a camera index, a video file or a stream URL until `stop` is set.

    A live source that fails or stalls is reopened with backoff. A file is read once, with its
    own frame times as the clock (so hold-off does not depend on decoding speed), and then the
    thread ends (`finished`).
    """

    faults = (OSError, cv2.error)

    def __init__(self, options: CameraOptions, sink: ScanSink, stop: threading.Event) -> None:
        super().__init__(options.name, options.source, sink, stop, options.reconnect)
        self.options = options
        self.pipeline = options.pipeline()
        self.finite = os.path.isfile(options.source)
        #: Frames decoded so far (diagnostics and tests).
        self.frames = 0

    def _present(self, error: Exception) -> bool:
        source = parse_source(self.options.source)
        if isinstance(source, int):
            return os.path.exists(f"/dev/video{source}")
        return os.path.exists(source)  # a stream URL that cannot be opened is not there

    def _release(self) -> None:
        self.pipeline.close()

    def _session(self) -> None:
        if self.finite:
            log.info("scanner %s: reading the video file %s", self.source, self.device)
        self._capture(is_file=self.finite)

    def _capture(self, *, is_file: bool) -> None:
        # Bounded open and read timeouts: a dead stream must not hang the capture thread.
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, 5000, cv2.CAP_PROP_READ_TIMEOUT_MSEC, 5000]
        cap = cv2.VideoCapture(parse_source(self.options.source), cv2.CAP_ANY, params)
        try:
            if not cap.isOpened():
                raise OSError(f"cannot open {self.options.source}")
            if not is_file:
                cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # decode the newest frame, not a backlog
            file_fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
            self._opened()
            min_gap = 1.0 / self.options.fps if self.options.fps > 0 else 0.0
            last = -1e9
            index = 0
            while not self.stop.is_set():
                ok, frame = cap.read()
                if not ok:
                    if is_file:
                        log.info("scanner %s: end of %s", self.source, self.device)
                        return
                    raise OSError("no frame from the camera (unplugged or stream ended)")
                now = index / file_fps if is_file else time.monotonic()
                index += 1
                if now - last < min_gap:
                    continue
                last = now
                self.frames += 1
                found = self.pipeline.process(np.asarray(frame, dtype=np.uint8), now)
                wall = time.time()
                for symbol in found:
                    self._deliver(symbol.scan_text, wall, symbol.symbology)
        finally:
            cap.release()
