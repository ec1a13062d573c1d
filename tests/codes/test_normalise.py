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


@pytest.mark.parametrize("standin", ["[GS]", "\\x1D", "\u241d"])
def test_more_gs_renderings_become_0x1d(standin: str) -> None:
    assert normalise(f"10ABC{standin}21X").text == f"10ABC{GS}21X"


@pytest.mark.parametrize("raw", ["]d2<GS>010690123456789221X", f"{GS}010690123456789221X{GS}"])
def test_leading_fnc1_and_trailing_separators_are_dropped(raw: str) -> None:
    assert normalise(raw).text == "010690123456789221X"


def test_standins_can_be_switched_off() -> None:
    # A site whose codes may legitimately contain "^]" turns the stand-ins off entirely.
    assert normalise("AB^]CD", gs_standins=()).text == "AB^]CD"


@pytest.mark.parametrize("symbology", ["]C0", "]C1", "]E0", "]d2", "]Q3", "]e0"])
def test_every_aim_identifier_is_split_off(symbology: str) -> None:
    n = normalise(symbology + "81234560000000011234")
    assert (n.symbology, n.text) == (symbology, "81234560000000011234")


def test_a_one_megabyte_line_is_refused_as_bad_length() -> None:
    with pytest.raises(CodeError) as info:
        normalise("8" * 1_000_000)
    assert info.value.reason == "bad_length"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("]C1", "empty"),
        ("]d2<GS>", "empty"),
        ("8123\t4560", "bad_charset"),
        ("8123456\r\n0000000011234", "bad_charset"),
        ("８１２３４５６０００", "bad_charset"),  # full-width digits from an IME
        ("8123456\x7f", "bad_charset"),
    ],
)
def test_control_and_non_ascii_refusals(raw: str, reason: str) -> None:
    with pytest.raises(CodeError) as info:
        normalise(raw)
    assert info.value.reason == reason


@pytest.mark.parametrize(
    ("raw", "fmt"),
    [
        ("[)>\x1e06\x1d9N111234568408\x1d1TF17L715034\x1e\x04", "06"),  # ASC MH10 (IFA/PPN)
        ("[)>\x1e05\x1d0106901234567892\x1e\x04", "05"),
        ("]d1[)><RS>06<GS>9N111234568408", "06"),  # a wedge's textual renderings
        ("[)>", "??"),
    ],
)
def test_iso_15434_envelope_is_named_not_a_charset_fault(raw: str, fmt: str) -> None:
    with pytest.raises(CodeError) as info:
        normalise(raw)
    error = info.value
    assert (error.reason, error.variant) == ("unsupported_format", "iso15434")
    assert error.where == f"ISO/IEC 15434, format {fmt}"


def test_blank_after_an_aim_identifier_is_data() -> None:
    # The scanner sends the symbol's data verbatim after its AIM id: a blank is part of it.
    assert normalise("]d2010690123456789221ABC \r\n").text == "010690123456789221ABC "
    assert normalise("  010690123456789221ABC  ").text == "010690123456789221ABC"
