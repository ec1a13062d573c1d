"""The keystroke decoder on full evdev event streams, per layout, with the faults seen in the field."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import evdev
import pytest
from evdev import ecodes as e
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.keymap import CALIBRATION_TEXT, DE, FR, LAYOUTS, UK, US, Keymap
from drivers.keystrokes import UNMAPPED, KeystrokeDecoder, KeystrokeOptions, decode_stream
from hardware_sim.hid_scanner import TimedEvent, VirtualHidScanner, syn_dropped

GS = "\x1d"
GS1_DM = "]d2010691234567890421ABC" + GS + "10LOT-1/2"
CN20 = "81234567890123456789"


def decode(events: Sequence[TimedEvent], keymap: Keymap, **options: Any) -> list[str]:
    end = events[-1].at + 10 if events else None
    return decode_stream(
        ((t.event, t.at) for t in events), keymap, KeystrokeOptions(**options), end=end
    )


def keys(*presses: tuple[int, ...], t0: float = 5.0) -> list[TimedEvent]:
    """Hand-written stream: each tuple is modifiers then the key, pressed 1 ms apart."""
    out: list[TimedEvent] = []
    t = t0

    def ev(code: int, value: int) -> None:
        nonlocal t
        t += 0.0005
        out.append(TimedEvent(evdev.InputEvent(int(t), 0, e.EV_KEY, code, value), t))
        out.append(TimedEvent(evdev.InputEvent(int(t), 0, e.EV_SYN, e.SYN_REPORT, 0), t))

    for chord in presses:
        *mods, key = chord
        for m in mods:
            ev(m, 1)
        ev(key, 1)
        ev(key, 0)
        for m in reversed(mods):
            ev(m, 0)
    return out


SH, AG, CTRL, ALT = e.KEY_LEFTSHIFT, e.KEY_RIGHTALT, e.KEY_LEFTCTRL, e.KEY_LEFTALT


# Hand-written streams pin the tables to what the physical layouts type, independently of the
# simulator (which reads the same tables).
@pytest.mark.parametrize(
    ("keymap", "presses", "expected"),
    [
        (US, [(SH, e.KEY_2), (e.KEY_RIGHTBRACE,), (SH, e.KEY_APOSTROPHE)], '@]"'),
        (UK, [(SH, e.KEY_2), (SH, e.KEY_APOSTROPHE), (e.KEY_BACKSLASH,), (e.KEY_102ND,)], '"@#\\'),
        (
            DE,
            [(AG, e.KEY_9), (e.KEY_Y,), (e.KEY_Z,), (SH, e.KEY_7), (e.KEY_SLASH,), (AG, e.KEY_Q)],
            "]zy/-@",
        ),
        (
            FR,
            [
                (SH, e.KEY_1),
                (e.KEY_1,),
                (e.KEY_Q,),
                (e.KEY_SEMICOLON,),
                (AG, e.KEY_MINUS),
                (SH, e.KEY_DOT),
            ],
            "1&am]/",
        ),
    ],
    ids=["us", "uk", "de", "fr"],
)
def test_layout_tables_match_the_physical_layouts(
    keymap: Keymap, presses: list[tuple[int, ...]], expected: str
) -> None:
    assert decode([*keys(*presses), *keys((e.KEY_ENTER,), t0=9)], keymap) == [expected]


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("gs_mode", ["ctrl", "altnum", "key"])
def test_every_layout_reads_codes_with_shift_gs_and_aim_prefix(layout: str, gs_mode: str) -> None:
    keymap = LAYOUTS[layout]
    sim = VirtualHidScanner(keymap, gs_mode=gs_mode)  # type: ignore[arg-type]
    codes = [
        GS1_DM,
        CN20,
        "]C1" + "0106912345678904" + "21Sn/8" + GS + "17270101",
        "MA.156.M0.100001",
    ]
    events = [t for c in codes for t in sim.events(c)]
    assert decode(events, keymap, gs_keys=frozenset({e.KEY_F8})) == codes


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_printable_ascii_survives_each_layout(layout: str) -> None:
    keymap = LAYOUTS[layout]
    events = VirtualHidScanner(keymap).events(CALIBRATION_TEXT)
    assert decode(events, keymap) == [CALIBRATION_TEXT]


def test_wrong_layout_mangles_the_code_this_is_why_layout_matters() -> None:
    # fr types digits with Shift; read as us they become punctuation.
    events = VirtualHidScanner(FR).events(CN20)
    assert decode(events, US) == ["*!@#$%^&*()!@#$%^&*("]


def test_capslock_inverts_letters_only() -> None:
    stream = keys(
        (e.KEY_CAPSLOCK,),
        (e.KEY_A,),
        (SH, e.KEY_B),
        (e.KEY_1,),
        (e.KEY_CAPSLOCK,),
        (e.KEY_C,),
        (e.KEY_ENTER,),
    )
    assert decode(stream, US) == ["Ab1c"]


def raw(*pairs: tuple[int, int], t0: float = 5.0) -> list[TimedEvent]:
    """Hand-written stream of (key, value) pairs, 0.5 ms apart, each with its SYN_REPORT."""
    out: list[TimedEvent] = []
    for i, (code, value) in enumerate(pairs):
        t = t0 + i * 0.0005
        out.append(TimedEvent(evdev.InputEvent(int(t), 0, e.EV_KEY, code, value), t))
        out.append(TimedEvent(evdev.InputEvent(int(t), 0, e.EV_SYN, e.SYN_REPORT, 0), t))
    return out


def test_alt_numpad_any_code_and_ctrl_letters() -> None:
    stream = [
        *keys((e.KEY_A,), (CTRL, e.KEY_RIGHTBRACE), (CTRL, e.KEY_D), (e.KEY_B,)),
        # Alt held across keypad digits 6, 5: one character, code 65 = "A".
        *raw(
            (ALT, 1),
            (e.KEY_KP6, 1),
            (e.KEY_KP6, 0),
            (e.KEY_KP5, 1),
            (e.KEY_KP5, 0),
            (ALT, 0),
            t0=5.02,
        ),
        *keys((e.KEY_ENTER,), t0=5.03),
    ]
    assert decode(stream, US) == ["a" + GS + "\x04bA"]


def test_terminators_are_configurable_and_tab_kp_enter_end_a_scan() -> None:
    stream = keys(
        (e.KEY_1,), (e.KEY_TAB,), (e.KEY_2,), (e.KEY_KPENTER,), (e.KEY_3,), (e.KEY_ENTER,)
    )
    assert decode(stream, US) == ["1", "2", "3"]
    only_enter = frozenset({e.KEY_ENTER})
    assert decode(stream, US, end_keys=only_enter) == ["1\ufffd2\ufffd3"]


def test_inter_key_timeout_ends_a_scan_without_terminator() -> None:
    sim = VirtualHidScanner(US, terminator=None)
    first = sim.events(CN20)
    sim.pause(0.2)
    second = sim.events("8" * 20)
    assert decode([*first, *second], US, inter_key_timeout=0.05) == [CN20, "8" * 20]
    # Without a timeout both run together: the timeout is what separates them.
    assert decode([*first, *second], US, inter_key_timeout=0) == []


def test_timeout_is_reported_by_expire_with_the_clock_passed_in() -> None:
    decoder = KeystrokeDecoder(US, KeystrokeOptions(inter_key_timeout=0.05))
    events = VirtualHidScanner(US, terminator=None, start=100.0).events("12")
    for t in events:
        assert decoder.feed(t.event, t.at) == []
    last = events[-1].at
    assert decoder.expire(last + 0.01) == []
    assert decoder.deadline() is not None
    assert decoder.expire(last + 0.06) == ["12"]
    assert decoder.deadline() is None


def test_syn_dropped_mid_scan_drops_the_whole_scan_and_clears_stuck_shift() -> None:
    sim = VirtualHidScanner(US)
    damaged = sim.events("ABC" + CN20)
    # The gap swallows the release of Shift after "A" and the "B" key: the kernel reports
    # SYN_DROPPED where they were.
    first_a_up = next(
        i
        for i, t in enumerate(damaged)
        if t.event.type == e.EV_KEY and t.event.code == e.KEY_A and t.event.value == 0
    )
    gap_end = next(
        i
        for i, t in enumerate(damaged)
        if t.event.type == e.EV_KEY and t.event.code == e.KEY_C and t.event.value == 1
    )
    stream = [
        *damaged[: first_a_up + 2],
        syn_dropped(damaged[first_a_up].at),
        *[t for t in damaged[gap_end - 3 :] if t.event.code != e.KEY_LEFTSHIFT],
        *sim.events("abc1"),
    ]
    decoder = KeystrokeDecoder(US)
    scans = [s for t in stream for s in decoder.feed(t.event, t.at)]
    # Neither the damaged scan nor its tail ("C8123…") is delivered; the next scan is read
    # correctly and in lower case: Shift is not stuck.
    assert scans == ["abc1"]
    assert decoder.dropped_scans == 1


def test_syn_dropped_counts_and_discards_until_syn_report() -> None:
    decoder = KeystrokeDecoder(US)
    stream = keys((e.KEY_1,), (e.KEY_2,))
    for t in stream:
        decoder.feed(t.event, t.at)
    decoder.feed(syn_dropped(6.0).event, 6.0)
    # Events after SYN_DROPPED up to the next SYN_REPORT are stale and ignored.
    decoder.feed(evdev.InputEvent(6, 0, e.EV_KEY, e.KEY_9, 1), 6.0)
    decoder.feed(evdev.InputEvent(6, 0, e.EV_SYN, e.SYN_REPORT, 0), 6.0)
    for t in keys((e.KEY_3,), (e.KEY_ENTER,), t0=6.1):
        out = decoder.feed(t.event, t.at)
        if out:
            assert out == ["3"]
    assert decoder.dropped_scans == 1


def test_resync_restores_modifier_state_from_the_device() -> None:
    decoder = KeystrokeDecoder(US)
    decoder.resync([e.KEY_LEFTSHIFT, e.KEY_A], capslock=False)
    scans: list[str] = []
    for t in keys((e.KEY_B,), (e.KEY_ENTER,)):
        scans += decoder.feed(t.event, t.at)
    assert scans == ["B"]


def test_unmapped_key_marks_the_scan_instead_of_dropping_a_character() -> None:
    assert decode(keys((e.KEY_1,), (e.KEY_F5,), (e.KEY_2,), (e.KEY_ENTER,)), US) == [
        f"1{UNMAPPED}2"
    ]


def test_autorepeat_does_not_duplicate_characters() -> None:
    stream = keys((e.KEY_1,), (e.KEY_ENTER,))
    repeat = TimedEvent(evdev.InputEvent(5, 0, e.EV_KEY, e.KEY_1, 2), stream[1].at)
    assert decode([*stream[:2], repeat, *stream[2:]], US) == ["1"]


def test_dead_keys_compose_with_space_on_de() -> None:
    assert decode(VirtualHidScanner(DE).events("a^b`c"), DE) == ["a^b`c"]


def test_one_ms_key_intervals_lose_no_character_over_many_scans() -> None:
    sim = VirtualHidScanner(DE, key_interval=0.001)
    codes = [f"8{n:019d}" for n in range(200)] + [GS1_DM] * 50
    events = [t for c in codes for t in sim.events(c)]
    assert decode(events, DE, inter_key_timeout=0.05) == codes


@settings(max_examples=60, deadline=None)
@given(
    layout=st.sampled_from(sorted(LAYOUTS)),
    code=st.text(alphabet=CALIBRATION_TEXT + GS, min_size=1, max_size=60),
)
def test_any_code_round_trips_on_any_layout(layout: str, code: str) -> None:
    keymap = LAYOUTS[layout]
    assert decode(VirtualHidScanner(keymap).events(code), keymap) == [code]
