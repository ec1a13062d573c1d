"""Worker feedback outputs: beeper bytes back to a real pty scanner, bell, console line."""

from __future__ import annotations

import io
import os
import select
from collections.abc import Callable
from pathlib import Path

from agent.ops.feedback import ConsoleFeedback, Signal, SoundFeedback, TerminalBell, signal_of
from agent.rules.decision import Decision
from drivers import RawScan
from hardware_sim.broker import free_port
from hardware_sim.serial_scanner import VirtualSerialScanner
from hardware_sim.workload import DEMO_CASE_PREFIX, trace_code, unit_codes
from tests.harness import AgentProcess

FEEDBACK = """
[feedback]
beeper_accepted = "\\u0007"
beeper_refused = "\\u0015E"
beeper_held = "\\u0016HOLD"
"""


def read_back(scanner: VirtualSerialScanner, want: int, timeout: float = 10.0) -> bytes:
    """Bytes the agent wrote to the scanner (the pty's master side), up to `want` of them."""
    got = b""
    for _ in range(int(timeout / 0.1)):
        if len(got) >= want:
            break
        ready, _, _ = select.select([scanner.master], [], [], 0.1)
        if ready:
            got += os.read(scanner.master, 1024)
    return got


def test_beeper_commands_reach_the_serial_scanner(
    scanner: VirtualSerialScanner, make_config: Callable[..., Path]
) -> None:
    cfg = make_config(mqtt_port=free_port(), port=scanner.port)
    cfg.write_text(cfg.read_text() + FEEDBACK)
    agent = AgentProcess(cfg).start()
    try:
        assert agent.wait_for(lambda a: any("reading" in ln for ln in a.stderr)), agent.stderr
        units = unit_codes(2, start=70)
        scanner.scan(units[0])
        assert read_back(scanner, 1) == b"\x07"
        scanner.scan("6901234567892")
        assert read_back(scanner, 2) == b"\x15E"
        scanner.scan(trace_code(DEMO_CASE_PREFIX, 9))
        assert read_back(scanner, 5) == b"\x16HOLD"
        scanner.scan(units[1])  # refused while the line is stopped: the held signal again
        assert read_back(scanner, 5) == b"\x16HOLD"
        scanner.scan("TSC:ACK")  # a command applied: the good-read beep
        assert read_back(scanner, 1) == b"\x07"
        assert agent.wait_for(lambda a: len(a.confirmed()) == 1 and len(a.refused()) == 3)
        assert agent.terminate() == 0
    finally:
        agent.stop()


def test_signal_and_bell() -> None:
    ok = Decision("x", True, "cn20", "unit", None, "81234560000000000001")
    bad = Decision("x", False, "commodity", "unknown", "commodity_barcode", "6901234567892")
    dup = Decision("x", False, "cn20", "unit", "duplicate_scan", "81234560000000000001")
    assert signal_of(ok, held=False) == "accepted"
    assert signal_of(bad, held=False) == "refused"
    assert signal_of(bad, held=True) == "held"
    assert signal_of(dup, held=False) is None
    out = io.StringIO()
    bell = TerminalBell(out, held=lambda scan, d: d is bad)
    scan = RawScan("x", "s", 0.0)
    bell.decided(scan, ok, 1)
    bell.decided(scan, dup, None)
    assert out.getvalue() == ""
    bell.decided(scan, bad, None)
    assert out.getvalue() == "\a\a"


def test_sound_player_gets_the_file_for_the_signal(tmp_path: Path) -> None:
    # `cp -t DIR` stands in for aplay (no sound card here): it receives the file the same way.
    sounds: dict[Signal, Path] = {s: tmp_path / f"{s}.wav" for s in ("accepted", "refused")}
    for path in sounds.values():
        path.write_bytes(b"RIFF" + path.stem.encode())
    played = tmp_path / "played"
    played.mkdir()
    out = SoundFeedback(sounds, ("cp", "-t", str(played)))
    try:
        scan = RawScan("x", "s", 0.0)
        out.decided(
            scan, Decision("x", False, "commodity", "unknown", "commodity_barcode", "x"), None
        )
        out.close()  # waits for the player
        assert [p.name for p in played.iterdir()] == ["refused.wav"]
        out.decided(scan, Decision("x", True, "cn20", "unit", None, "x"), 1)
    finally:
        out.close()
    assert sorted(p.name for p in played.iterdir()) == ["accepted.wav", "refused.wav"]


def test_the_console_line_cannot_be_forged_by_what_was_scanned() -> None:
    out = io.StringIO()
    console = ConsoleFeedback("en", out)
    hostile = "x\n✔ [counter] seq=99 cn20/unit 8123456…0001\x1b[2J"
    scan = RawScan(hostile, "counter\n✘", 0.0)
    refused = Decision(hostile, False, "unknown", "unknown", "blocked", hostile, detail=hostile)
    accepted = Decision(hostile, True, "gs1", "unit", None, "0106901234567892\x1d21SN\n1")
    console.decided(scan, refused, None)
    console.decided(scan, accepted, 7)
    console.note(scan, hostile)
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert all(line.isprintable() for line in lines)
