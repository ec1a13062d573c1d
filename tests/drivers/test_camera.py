"""Camera driver on rendered frames and a rendered video, with both decoders."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import pytest

from drivers.camera import (
    CameraOptions,
    CameraScanner,
    FrameOptions,
    FramePipeline,
    HoldOff,
    PyzbarDecoder,
    ZxingDecoder,
    make_decoder,
    parse_source,
    prepare,
    zxing_payload,
)
from drivers.reconnect import ReconnectPolicy
from drivers.scan import RawScan
from hardware_sim.camera_scene import (
    VARIANTS,
    Kind,
    Showing,
    blank_frame,
    compose,
    render_symbol,
    timeline_frames,
    write_video,
)
from tests.harness import AgentProcess, config_file

GS = "\x1d"
CN20 = "81234567890123456789"
GS1_HRI = "(01)06912345678902(17)301231(10)AB12(21)SN123"
GS1_BYTES = "01069123456789021730123110AB12" + GS + "21SN123"
GS1_128_HRI = "(01)06912345678902(10)AB12(21)SN7"
GS1_128_BYTES = "010691234567890210AB12" + GS + "21SN7"
MA = "MA.156.M0.100001.1234567.S12345"
EAN = "6901234567892"

# (content, kind, what zxing delivers, what pyzbar delivers or None if it cannot read it)
CASES: list[tuple[str, Kind, str, str | None]] = [
    (CN20, "code128", "]C0" + CN20, CN20),
    (GS1_HRI, "gs1-datamatrix", "]d2" + GS1_BYTES, None),
    # zbar keeps the GS between fields but pyzbar cannot say the symbol was GS1-128 (no ]C1).
    (GS1_128_HRI, "gs1-code128", "]C1" + GS1_128_BYTES, GS1_128_BYTES),
    (MA, "qr", "]Q1" + MA, MA),
    (EAN, "ean13", "]E0" + EAN, "]E0" + EAN),
]


def texts(
    decoder: ZxingDecoder | PyzbarDecoder, content: str, kind: Kind, variant: int = 0
) -> list[str]:
    frame = compose(render_symbol(content, kind), VARIANTS[variant])
    return [s.scan_text for s in decoder.decode(prepare(frame, FrameOptions()))]


@pytest.mark.parametrize(("content", "kind", "zxing", "pyzbar"), CASES, ids=[c[1] for c in CASES])
def test_rendered_frames_decode_to_exact_scans_with_both_decoders(
    content: str, kind: Kind, zxing: str, pyzbar: str | None
) -> None:
    assert texts(ZxingDecoder(), content, kind) == [zxing]
    assert texts(PyzbarDecoder(), content, kind) == ([pyzbar] if pyzbar else [])


def test_gs1_fnc1_is_kept_as_gs_not_the_display_string() -> None:
    (symbol,) = ZxingDecoder().decode(
        prepare(compose(render_symbol(GS1_HRI, "gs1-datamatrix")), FrameOptions())
    )
    assert symbol.symbology == "]d2"
    assert GS in symbol.text
    assert "<GS>" not in symbol.text
    assert "(" not in symbol.text


@pytest.mark.parametrize("variant", range(len(VARIANTS)), ids=[v.name for v in VARIANTS])
def test_zxing_reads_every_variant_of_every_kind(variant: int) -> None:
    decoder = ZxingDecoder()
    for content, kind, zxing, _ in CASES:
        assert texts(decoder, content, kind, variant) == [zxing], (kind, VARIANTS[variant].name)


def test_empty_frame_gives_no_scan_with_either_decoder() -> None:
    # Bounded cost is measured in bench/bench_drivers.py; here: nothing invented from nothing.
    for decoder in (ZxingDecoder(), PyzbarDecoder()):
        assert decoder.decode(prepare(blank_frame(), FrameOptions())) == []


def test_holdoff_gives_one_scan_per_pack_held_in_view() -> None:
    h = HoldOff(1.0)
    seen = [h.admit(["A"], t / 25) for t in range(50)]  # two seconds in view
    assert [t for batch in seen for t in batch] == ["A"]
    assert h.admit([], 2.5) == []  # taken away...
    assert h.admit(["A"], 2.6) == []  # ...shown again within the hold-off: same pack
    assert h.admit(["A", "B"], 4.0) == ["A", "B"]  # out of view 1.4 s: a new scan; B is new
    assert h.admit(["B", "B"], 4.04) == []


def test_roi_and_downscale() -> None:
    symbol = render_symbol(CN20, "code128")
    frame = compose(symbol, centre=(300, 200))
    decoder = ZxingDecoder(["code128"])
    left = FramePipeline(decoder, FrameOptions(roi=(0, 0, 640, 400)))
    right = FramePipeline(decoder, FrameOptions(roi=(640, 0, 640, 720)))
    assert [s.scan_text for s in left.process(frame, 0.0)] == ["]C0" + CN20]
    assert right.process(frame, 0.0) == []
    big = compose(render_symbol(CN20, "code128", module_px=4))
    half = FramePipeline(decoder, FrameOptions(downscale=0.5))
    assert [s.scan_text for s in half.process(big, 0.0)] == ["]C0" + CN20]


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown barcode formats"):
        make_decoder("zxing", ["aztec"])


SESSION = [
    Showing(CN20, "code128", frames=12, gap=4),
    Showing(GS1_HRI, "gs1-datamatrix", frames=10, gap=4, variant=VARIANTS[1]),
    Showing(MA, "qr", frames=10, gap=4, variant=VARIANTS[3]),
    # The first pack again after 2 s out of view: a second scan (hold-off 1 s).
    Showing(CN20, "code128", frames=8, gap=50),
    Showing(CN20, "code128", frames=8, gap=2),
]


@pytest.fixture(scope="module")
def session_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("camera") / "counter.avi"
    return write_video(path, timeline_frames(SESSION), fps=25)


@pytest.mark.parametrize(
    ("decoder", "expected"),
    [
        ("zxing", ["]C0" + CN20, "]d2" + GS1_BYTES, "]Q1" + MA, "]C0" + CN20, "]C0" + CN20]),
        ("pyzbar", [CN20, MA, CN20, CN20]),
    ],
)
def test_rendered_video_gives_one_scan_per_pack(
    session_video: Path, decoder: str, expected: list[str]
) -> None:
    scans: list[RawScan] = []
    stop = threading.Event()
    options = CameraOptions("cam", str(session_video), decoder=decoder, holdoff=1.0)  # type: ignore[arg-type]
    driver = CameraScanner(options, scans.append, stop)
    driver.start()
    assert driver.finished.wait(60)
    driver.join(timeout=5)
    assert [s.text for s in scans] == expected
    assert all(s.source == "cam" for s in scans)
    assert driver.frames == sum(s.frames + s.gap for s in SESSION)


def test_missing_camera_is_retried_and_never_ends_the_thread(tmp_path: Path) -> None:
    stop = threading.Event()
    scans: list[RawScan] = []
    policy = ReconnectPolicy(initial=0.05, maximum=0.05)
    options = CameraOptions("cam", str(tmp_path / "no-such-stream.mjpg"), reconnect=policy)
    driver = CameraScanner(options, scans.append, stop)
    driver.start()
    deadline = time.monotonic() + 10
    while driver.failures < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert driver.is_alive()
    assert not driver.connected.is_set()
    state = driver.state.snapshot()
    assert state.failures >= 3
    assert (state.present, state.open, state.opens, state.last_scan) == (False, False, 0, None)
    assert state.last_error is not None
    assert "cannot open" in state.last_error
    stop.set()
    driver.join(timeout=3)
    assert not driver.is_alive()
    assert driver.finished.is_set()
    assert scans == []


def test_a_video_file_is_read_once_and_the_state_says_so(session_video: Path) -> None:
    scans: list[RawScan] = []
    driver = CameraScanner(
        CameraOptions("cam", str(session_video)), scans.append, threading.Event()
    )
    driver.start()
    assert driver.finished.wait(60)
    state = driver.state.snapshot()
    assert (state.opens, state.open, state.present, state.failures) == (1, False, True, 0)
    assert state.last_scan == max(s.received_at for s in scans)
    assert state.absent_since is not None  # read to its end: no longer open


def test_camera_options_refuse_what_no_decoder_reads() -> None:
    with pytest.raises(ValueError, match="unknown barcode formats"):
        CameraOptions("cam", "0", formats=("aztec",))
    with pytest.raises(ValueError, match="decoder"):
        CameraOptions("cam", "0", decoder="zbar")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no camera source"):
        CameraOptions("cam", "")


def test_camera_source_is_an_index_or_a_path() -> None:
    assert parse_source("0") == 0
    assert parse_source("rtsp://cam.local/stream") == "rtsp://cam.local/stream"
    # `str.isdigit` holds for these, `int` refuses the first and reads the second as 3
    assert parse_source("\u00b2") == "\u00b2"
    assert parse_source("\u0663") == "\u0663"


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        ("Zé-42", "code128"),  # Code 128 has no ECI: ISO 8859-1 is its character set
        ("Zé-42", "qr"),
        ("ЖЗ-42", "qr"),  # outside Latin-1: the writer adds an ECI designator
    ],
)
def test_payload_is_decoded_by_the_symbologys_character_set(content: str, kind: Kind) -> None:
    # Read as UTF-8, these bytes became replacement characters and the scan a bad_charset.
    assert [
        s.text
        for s in ZxingDecoder().decode(
            prepare(compose(render_symbol(content, kind)), FrameOptions())
        )
    ] == [content]


def test_payload_without_text_keeps_every_byte() -> None:
    # An ECI zxing-cpp does not know gives no text: one character per byte, nothing invented.
    raw = bytes([0xE1, 0xA1, 0x40])
    assert zxing_payload("", raw).encode("latin-1") == raw
    assert zxing_payload("¶Ж", b"\xb6\xb6") == "¶Ж"


def test_a_camera_agents_stderr_holds_only_its_own_log_lines(
    session_video: Path, tmp_path: Path
) -> None:
    """OpenCV's `[ WARN:0@…]` lines and nanobind's "leaked instance" report at exit broke the
    agent's logfmt under journald (~40 lines per stop): a real agent with a video and a camera
    index that is not there, started and stopped."""
    cfg = config_file(
        tmp_path,
        scanner=[
            {"type": "camera", "name": "cam", "port": str(session_video)},
            {"type": "camera", "name": "gone", "port": "9"},  # /dev/video9 does not exist
        ],
    )
    agent = AgentProcess(cfg).start()
    try:
        assert agent.wait_for(lambda a: len(a.confirmed()) >= 3, timeout=60), agent.stderr
        assert agent.wait_for(lambda a: any("end of" in line for line in a.stderr))
        time.sleep(1.0)  # the missing camera is tried again meanwhile
        assert agent.terminate() == 0
    finally:
        agent.stop()
    ours = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR) [\w.]+: ")
    foreign = [line for line in agent.stderr if not ours.match(line)]
    assert foreign == []
    assert agent.stderr[-1].endswith("agent.daemon: tracescan stopped")
