"""Telling the worker, at once, whether a scan counted.

Outputs implement `Feedback` and are called on the writer thread after each commit, so they
must be quick and must not raise into the pipeline (the daemon logs and carries on if they do).
Besides the console line there are the scanner's own beeper (command bytes on a serial
scanner), the terminal bell, a sound file through ALSA, and the local API's subscribers.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Final, Literal, TextIO

from agent.config import FeedbackConfig
from agent.rules.decision import Decision
from agent.rules.limits import shown
from agent.service.writer import Feedback
from drivers import RawScan

log = logging.getLogger(__name__)


def mask(code: str) -> str:
    """Enough of a code for the worker to recognise the pack, without the full serial."""
    if len(code) <= 8:
        return code
    return f"{code[:7]}…{code[-4:]}"


class ConsoleFeedback:
    """One line per scan on a terminal: ✔ for recorded, ✘ with the reason for refused."""

    def __init__(self, lang: str = "zh", stream: TextIO | None = None) -> None:
        self.lang = lang
        self.stream = stream or sys.stdout
        self._lock = threading.Lock()

    def decided(self, scan: RawScan, decision: Decision, seq: int | None) -> None:
        """Print the verdict line (every value from outside escaped: one line, no control codes)."""
        source = shown(scan.source)
        if decision.accepted:
            what = f"{decision.kind}/{decision.level} {shown(mask(decision.text))}"
            line = f"✔ [{source}] seq={seq} {what}"
        else:
            line = f"✘ [{source}] {decision.reason}: {shown(decision.message(self.lang))}"
        if decision.reason == "duplicate_scan":
            line = f"· [{source}] double read ignored"
        with self._lock:
            print(line, file=self.stream, flush=True)

    def note(self, scan: RawScan, text: str) -> None:
        """Print a command acknowledgement."""
        with self._lock:
            print(f"ℹ [{shown(scan.source)}] {shown(text)}", file=self.stream, flush=True)


# --- signals and outputs beyond the console (issue 8) ------------------------------------

#: What the worker must be told: the scan counted, it did not, or the line is stopped.
Signal = Literal["accepted", "refused", "held"]
SIGNALS: Final[tuple[Signal, ...]] = ("accepted", "refused", "held")

#: Whether `decision` is the one that stopped its scanner (evaluated on the writer thread).
HeldProbe = Callable[[RawScan, Decision], bool]


def signal_of(decision: Decision, held: bool) -> Signal | None:
    """The signal for a decision; None for a double read, which the worker should not hear."""
    if decision.accepted:
        return "accepted"
    if decision.reason == "duplicate_scan":
        return None
    if held or decision.reason == "awaiting_ack":
        return "held"
    return "refused"


def _never_held(scan: RawScan, decision: Decision) -> bool:
    return False


class BeeperFeedback:
    """Beeper/LED command bytes written back to the serial scanner that read the code.

    Most serial scanners (Honeywell, Zebra, Newland) take host commands for a good-read or
    error beep; the bytes are vendor-specific, hence configured per signal. `send(source,
    data)` writes to the scanner named `source` and returns False when it cannot (HID and
    camera sources, an unplugged port).
    """

    def __init__(
        self,
        commands: Mapping[Signal, bytes],
        send: Callable[[str, bytes], bool],
        held: HeldProbe = _never_held,
    ) -> None:
        self.commands = dict(commands)
        self.send = send
        self.held = held

    def decided(self, scan: RawScan, decision: Decision, seq: int | None) -> None:
        """Send the command bytes for this decision's signal, if any are configured."""
        sig = signal_of(decision, self.held(scan, decision))
        data = self.commands.get(sig) if sig else None
        if data:
            self.send(scan.source, data)

    def note(self, scan: RawScan, text: str) -> None:
        """A command barcode was applied: the good-read beep confirms it."""
        data = self.commands.get("accepted")
        if data:
            self.send(scan.source, data)


class TerminalBell:
    """The terminal bell (BEL) on a refusal, twice when the line is stopped."""

    def __init__(self, stream: TextIO | None = None, held: HeldProbe = _never_held) -> None:
        self.stream = stream or sys.stdout
        self.held = held

    def decided(self, scan: RawScan, decision: Decision, seq: int | None) -> None:
        """Ring for refused and held scans."""
        sig = signal_of(decision, self.held(scan, decision))
        if sig in ("refused", "held"):
            self.stream.write("\a" * (2 if sig == "held" else 1))
            self.stream.flush()

    def note(self, scan: RawScan, text: str) -> None:
        """Commands are silent."""


class SoundFeedback:
    """A sound file per signal, played with ALSA's `aplay` (or another player) in the background.

    The player runs detached from the writer thread: feedback must never slow a commit. At
    most one sound plays at a time; a new verdict cuts the previous sound short, as the worker
    only cares about the latest scan.
    """

    def __init__(
        self,
        files: Mapping[Signal, Path],
        player: Sequence[str] = ("aplay", "-q"),
        held: HeldProbe = _never_held,
    ) -> None:
        self.files = dict(files)
        self.player = list(player)
        self.held = held
        self._playing: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    def decided(self, scan: RawScan, decision: Decision, seq: int | None) -> None:
        """Play the file for this decision's signal."""
        sig = signal_of(decision, self.held(scan, decision))
        path = self.files.get(sig) if sig else None
        if path is not None:
            self.play(path)

    def note(self, scan: RawScan, text: str) -> None:
        """Commands are silent."""

    def play(self, path: Path) -> None:
        """Start the player on `path`, stopping the previous sound."""
        with self._lock:
            self._reap(kill=True)
            try:
                self._playing = subprocess.Popen(
                    [*self.player, str(path)],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            except OSError as exc:
                log.warning("feedback: cannot play %s (%s)", path.name, exc)

    def close(self) -> None:
        """Let the current sound finish (up to a second), then reap the player."""
        with self._lock:
            self._reap(kill=False)

    def _reap(self, *, kill: bool) -> None:
        proc, self._playing = self._playing, None
        if proc is None:
            return
        if kill and proc.poll() is None:
            proc.terminate()
        try:
            proc.wait(1.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def build_outputs(
    cfg: FeedbackConfig,
    lang: str,
    *,
    send: Callable[[str, bytes], bool],
    held: HeldProbe,
) -> list[Feedback]:
    """The outputs `[feedback]` asks for (the local API adds its own when it starts)."""
    outputs: list[Feedback] = []
    if cfg.console:
        outputs.append(ConsoleFeedback(lang))
    if cfg.bell:
        outputs.append(TerminalBell(held=held))
    beeps = {
        s: b.encode("latin-1")
        for s, b in zip(
            SIGNALS, (cfg.beeper_accepted, cfg.beeper_refused, cfg.beeper_held), strict=True
        )
        if b
    }
    if beeps:
        outputs.append(BeeperFeedback(beeps, send, held))
    sounds = {
        s: p
        for s, p in zip(
            SIGNALS, (cfg.sound_accepted, cfg.sound_refused, cfg.sound_held), strict=True
        )
        if p is not None
    }
    if sounds:
        outputs.append(SoundFeedback(sounds, (*cfg.player,), held))
    return outputs
