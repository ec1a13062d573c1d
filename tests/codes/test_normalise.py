"""agent/codes/normalise.py: one normalisation for every input path."""

from __future__ import annotations

import pytest

from agent.codes import GS, CodeError, normalise


@pytest.mark.parametrize("standin", ["<GS>", "{GS}", "^]", "\\x1d", GS])
def test_gs_standins_become_0x1d(standin: str) -> None:
    assert normalise(f"0106901234567892{standin}10ABC").text == f"0106901234567892{GS}10ABC"


def test_aim_prefix_is_kept_as_metadata() -> None:
    n = normalise("]d2" + GS + "010690123456789221X")
    assert n.symbology == "]d2"
    assert n.text == "010690123456789221X"


def test_crlf_and_spaces_trimmed() -> None:
    assert normalise("  81234560000000011234\r\n").text == "81234560000000011234"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("\r\n", "empty"),
        ("81\x0034", "bad_charset"),
        ("x" * 600, "bad_length"),
        ("码", "bad_charset"),
    ],
)
def test_refusals(raw: str, reason: str) -> None:
    with pytest.raises(CodeError) as info:
        normalise(raw)
    assert info.value.reason == reason


def test_configurable_replacement_character() -> None:
    assert (
        normalise("0106901234567892~10ABC", gs_replacement="~").text == f"0106901234567892{GS}10ABC"
    )
