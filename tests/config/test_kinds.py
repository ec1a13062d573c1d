"""Value kinds: each accepts exactly its values and says what is wrong with the others."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.config.kinds import (
    AnyPath,
    Bool,
    Choice,
    File,
    Int,
    Invalid,
    IsoDate,
    ListOf,
    Number,
    Secret,
    Text,
    quoted,
)

BASE = Path("/etc/tracescan")

# Raw TOML values of every type (tomllib's types; datetime kinds left out as they behave as
# any other wrong type).
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.dates(),
)
raw_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=10,
)


def problems(kind: object, raw: object, base: Path = BASE) -> list[tuple[str, str]]:
    assert hasattr(kind, "read")
    with pytest.raises(Invalid) as info:
        kind.read(raw, base)
    return info.value.problems


@given(st.integers(-1000, 1000), st.integers(0, 50))
def test_int_accepts_exactly_its_range(lo: int, width: int) -> None:
    kind = Int(lo, lo + width)
    for v in (lo, lo + width, lo + width // 2):
        assert kind.read(v, BASE) == v
    assert problems(kind, lo - 1) == [("", f"{lo - 1} is outside {lo}..{lo + width}")]
    assert problems(kind, lo + width + 1) == [
        ("", f"{lo + width + 1} is outside {lo}..{lo + width}")
    ]


@given(raw_values.filter(lambda v: not isinstance(v, int) or isinstance(v, bool)))
def test_int_refuses_every_other_type(raw: object) -> None:
    assert problems(Int(0, 10), raw) == [("", f"must be an integer, got {type(raw).__name__}")]


def test_int_names_a_huge_value_without_printing_it() -> None:
    # repr() of a 5000-digit int raises ValueError in Python ≥ 3.11; the problem line must not
    ((_, what),) = problems(Int(1, 65535), 10**5000)
    assert what == "a 16610-bit integer is outside 1..65535"


@given(st.floats(0.05, 1.0) | st.integers(0, 1))
def test_number_reads_ints_and_floats_in_range_as_float(raw: float) -> None:
    if raw == 0:
        return
    value = Number(0.05, 1.0).read(raw, BASE)
    assert isinstance(value, float)
    assert value == raw


@pytest.mark.parametrize(
    ("raw", "what"),
    [
        (math.nan, "nan is outside 0.0..60.0"),
        (math.inf, "inf is outside 0.0..60.0"),
        (-0.5, "-0.5 is outside 0.0..60.0"),
        (61, "61 is outside 0.0..60.0"),
        (True, "must be a number, got bool"),
        ("1.5", "must be a number, got str"),
    ],
)
def test_number_refuses(raw: object, what: str) -> None:
    assert problems(Number(0.0, 60.0), raw) == [("", what)]


@given(st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True))
def test_text_accepts_what_its_pattern_matches(raw: str) -> None:
    assert Text(r"[A-Za-z0-9_-]{1,64}").read(raw, BASE) == raw


def test_text_refuses() -> None:
    kind = Text(r"[a-z]+")
    assert problems(kind, "bad id!") == [("", "'bad id!' must match [a-z]+")]
    assert problems(kind, 7) == [("", "must be a string, got int")]
    assert problems(Text(), ["a"]) == [("", "must be a string, got list")]
    assert Text().read("", BASE) == ""
    assert Text().given("")
    assert not Text(empty_is_unset=True).given("")


def test_long_values_are_cut_in_problem_lines() -> None:
    ((_, what),) = problems(Text(r"[a-z]+"), "A" * 100_000)
    assert what == "'" + "A" * 238 + "… must match [a-z]+"
    assert quoted("x" * 10) == "'xxxxxxxxxx'"


def test_secret_is_masked_when_shown_and_kept_out_of_reprs() -> None:
    assert Secret().read("s3cret", BASE) == "s3cret"
    assert Secret().show("s3cret") == "***"
    assert Secret().show("") == ""  # an empty password shows that there is none
    assert Secret.secret
    assert not Text.secret


def test_choice() -> None:
    kind = Choice(("refuse", "warn"))
    assert kind.read("warn", BASE) == "warn"
    assert problems(kind, "ignore") == [("", "'ignore' is not one of refuse, warn")]
    assert problems(kind, 5) == [("", "must be a string, got int")]


@given(raw_values)
def test_bool_takes_only_true_and_false(raw: object) -> None:
    if isinstance(raw, bool):
        assert Bool().read(raw, BASE) is raw
    else:
        assert problems(Bool(), raw) == [("", f"must be true or false, got {type(raw).__name__}")]


def test_paths_are_taken_against_the_config_directory(tmp_path: Path) -> None:
    kind = AnyPath()
    assert kind.read("data", tmp_path) == tmp_path / "data"
    assert kind.read("/var/lib/x", tmp_path) == Path("/var/lib/x")
    assert kind.read("~/x", tmp_path) == Path(os.path.expanduser("~/x"))
    assert not kind.given("")  # `path = ""` in the example file: the default stays
    assert kind.show(tmp_path) == str(tmp_path)
    assert problems(kind, 3) == [("", "must be a path string, got int")]
    assert problems(kind, "a\x00b") == [("", "'a\\x00b' contains a NUL character")]


def test_file_must_exist_and_odd_names_are_problems_not_exceptions(tmp_path: Path) -> None:
    (tmp_path / "ok.csv").write_text("x")
    kind = File()
    assert kind.read("ok.csv", tmp_path) == tmp_path / "ok.csv"
    missing = tmp_path / "missing.csv"
    assert problems(kind, "missing.csv", tmp_path) == [
        ("", f"file {str(missing)!r} does not exist")
    ]
    assert problems(kind, ".", tmp_path)[0][1].endswith("does not exist")  # a directory
    ((_, what),) = problems(kind, "x" * 5000, tmp_path)  # is_file() raises ENAMETOOLONG
    assert what.endswith("cannot be checked (File name too long)")


@given(st.dates())
def test_iso_date_accepts_calendar_dates(day: object) -> None:
    text = f"{day:%Y-%m-%d}"
    if len(text) == 10:
        assert IsoDate().read(text, BASE) == text


def test_iso_date_refuses() -> None:
    assert problems(IsoDate(), "2026-02-30") == [("", "'2026-02-30' is not a calendar date")]
    assert problems(IsoDate(), "1.10.2026") == [
        ("", "'1.10.2026' must match [0-9]{4}-[0-9]{2}-[0-9]{2}")
    ]
    assert problems(IsoDate(), 20261001) == [("", "must be a date string YYYY-MM-DD, got int")]


def test_list_names_each_wrong_item_and_counts_the_rest() -> None:
    kind = ListOf(Int(0, 9))
    assert kind.read([1, 2], BASE) == (1, 2)
    assert kind.read([], BASE) == ()
    assert problems(kind, 3) == [("", "must be a list, got int")]
    assert problems(kind, [1, "x", 10]) == [
        ("[1]", "must be an integer, got str"),
        ("[2]", "10 is outside 0..9"),
    ]
    many = problems(kind, [-1] * 1000)
    assert len(many) == 6
    assert many[-1] == ("", "… and 995 more problems")


def test_nested_lists_name_the_item_path() -> None:
    assert problems(ListOf(ListOf(Bool())), [[True], [True, 1]]) == [
        ("[1][1]", "must be true or false, got int")
    ]


def test_list_shows_its_items_as_plain_data(tmp_path: Path) -> None:
    assert ListOf(AnyPath()).show((tmp_path,)) == (str(tmp_path),)


@given(raw_values)
def test_every_kind_raises_only_invalid(raw: object) -> None:
    for kind in (
        Text(r"[a-z]+"),
        Choice(("a",)),
        Int(0, 1),
        Number(0, 1),
        Bool(),
        AnyPath(),
        File(),
        IsoDate(),
        ListOf(Text()),
        ListOf(File()),
    ):
        try:
            kind.read(raw, BASE)
        except Invalid as exc:
            found = exc.problems
        else:
            continue
        assert found
        assert all(isinstance(what, str) and what for _, what in found)
