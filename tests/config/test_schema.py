"""The schema machinery, on a document of its own (a central ledger's), not the agent's."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.config.kinds import AnyPath, Bool, Choice, File, Int, ListOf, Number, Secret, Text
from agent.config.schema import (
    EX_CONFIG,
    MAX_FILE_BYTES,
    ConfigError,
    Problem,
    load_document,
    masked,
    read_document,
    reference,
    setting,
    table,
    tables,
)


@dataclass(frozen=True, slots=True)
class CentralSection:
    """[central]"""

    key_dir: Path = setting(Path("/etc/tracescan-central/keys"), AnyPath(), "the signing key")
    topic_prefix: str = setting("tracescan/v1", Text(r"[^#+\x00]+"), "topic prefix")
    ack_timeout: float = setting(60.0, Number(1.0, 3600.0), "seconds")


@dataclass(frozen=True, slots=True)
class LinkSection:
    """[mqtt]"""

    host: str = setting("127.0.0.1", Text(), "broker")
    port: int = setting(1883, Int(1, 65535), "broker port")
    password: str = setting("", Secret(), "broker password")
    cert_file: Path | None = setting(None, File(), "client certificate")
    key_file: Path | None = setting(None, File(), "client key")

    def check(self) -> Iterator[Problem]:
        if (self.cert_file is None) != (self.key_file is None):
            yield Problem("cert_file", "needs key_file")


@dataclass(frozen=True, slots=True)
class DatabaseSection:
    """[database]"""

    dsn: str = setting("", Secret(), "PostgreSQL DSN", required=True)
    pool: int = setting(4, Int(1, 64), "connections")


@dataclass(frozen=True, slots=True)
class ConsumerSection:
    """[[consumer]]"""

    name: str = setting("", Text(r"[a-z0-9]+"), "consumer name")
    share: str = setting("all", Choice(("all", "site")), "subscription share")
    tags: tuple[str, ...] = setting((), ListOf(Text()), "labels")
    paused: bool = setting(False, Bool(), "start paused")

    def named(self, index: int) -> ConsumerSection:
        return self if self.name else replace(self, name=f"c{index}")


@dataclass(frozen=True, slots=True)
class Ledger:
    """A central ledger's whole configuration."""

    central: CentralSection = table(CentralSection)
    mqtt: LinkSection = table(LinkSection)
    database: DatabaseSection = table(DatabaseSection)
    consumers: tuple[ConsumerSection, ...] = tables(
        ConsumerSection, key="consumer", each=ConsumerSection.named
    )

    def check(self) -> Iterator[Problem]:
        names = [c.name for c in self.consumers]
        if len(set(names)) != len(names):
            yield Problem("consumer.name", "names must be unique")


GOOD = {"database": {"dsn": "postgresql://ledger@db/ledger"}}


def problems_of(doc: dict[str, object], base: Path = Path("/srv")) -> list[str]:
    with pytest.raises(ConfigError) as info:
        read_document(Ledger, doc, base)
    assert str(info.value) == "\n".join(info.value.problems)
    return info.value.problems


def test_defaults_fill_what_the_file_leaves_out() -> None:
    ledger = read_document(Ledger, GOOD, Path("/srv"))
    assert ledger.central == CentralSection()
    assert ledger.mqtt.port == 1883
    assert ledger.database.pool == 4
    assert ledger.consumers == ()


def test_values_are_converted_and_paths_taken_against_the_base(tmp_path: Path) -> None:
    ledger = read_document(
        Ledger,
        {
            **GOOD,
            "central": {"key_dir": "keys", "ack_timeout": 5},
            "consumer": [{"tags": ["a", "b"]}, {"name": "x", "share": "site", "paused": True}],
        },
        tmp_path,
    )
    assert ledger.central.key_dir == tmp_path / "keys"
    assert ledger.central.ack_timeout == 5.0
    assert isinstance(ledger.central.ack_timeout, float)
    assert ledger.consumers == (
        ConsumerSection(name="c0", tags=("a", "b")),
        ConsumerSection(name="x", share="site", paused=True),
    )


def test_every_problem_is_reported_at_once_in_order() -> None:
    assert problems_of(
        {
            "centrall": {},
            "central": {"topic_prefix": "a/#", "ack_timeout": 0, "keydir": "k"},
            "mqtt": {"port": "1883", "password": 5},
            "consumer": [{"name": "Bad!", "share": "none", "tags": ["a", 2]}, "x"],
        }
    ) == [
        "centrall: unknown section (did you mean 'central'?)",
        "central.topic_prefix: 'a/#' must match [^#+\\x00]+",
        "central.ack_timeout: 0 is outside 1.0..3600.0",
        "central.keydir: unknown key (did you mean 'key_dir'?)",
        "mqtt.port: must be an integer, got str",
        "mqtt.password: must be a string, got int",
        "database.dsn: required",
        "consumer[0].name: 'Bad!' must match [a-z0-9]+",
        "consumer[0].share: 'none' is not one of all, site",
        "consumer[0].tags[1]: must be a string, got int",
        "consumer[1]: must be a table",
    ]


def test_unknown_names_far_from_any_key_get_no_hint() -> None:
    assert problems_of({**GOOD, "mqtt": {"colour": "blue"}, "zzz": 1}) == [
        "zzz: unknown section",
        "mqtt.colour: unknown key",
    ]


def test_a_huge_unknown_key_is_cut_in_its_problem_line() -> None:
    (line,) = problems_of({**GOOD, "mqtt": {"k" * 100_000: 1}})
    assert line.startswith("mqtt.kkk")
    assert line.endswith("…: unknown key")
    assert len(line) < 100


def test_tables_of_the_wrong_shape() -> None:
    assert problems_of({**GOOD, "mqtt": [1], "consumer": "c"}) == [
        "mqtt: must be a table",
        "consumer: must be an array of tables ([[consumer]])",
    ]


def test_a_single_table_where_an_array_is_declared_counts_as_one() -> None:
    ledger = read_document(Ledger, {**GOOD, "consumer": {"name": "solo"}}, Path("/srv"))
    assert [c.name for c in ledger.consumers] == ["solo"]


def test_cross_field_rules_run_on_sections_and_on_the_document(tmp_path: Path) -> None:
    (tmp_path / "c.pem").write_text("x")
    assert problems_of(
        {**GOOD, "mqtt": {"cert_file": "c.pem"}, "consumer": [{"name": "c1"}, {}]}, tmp_path
    ) == ["mqtt.cert_file: needs key_file", "consumer.name: names must be unique"]


def test_a_rule_is_not_repeated_on_a_key_whose_own_value_was_wrong(tmp_path: Path) -> None:
    assert problems_of({**GOOD, "mqtt": {"cert_file": "missing.pem"}}, tmp_path) == [
        f"mqtt.cert_file: file {str(tmp_path / 'missing.pem')!r} does not exist"
    ]


def test_masked_is_plain_data_without_secrets(tmp_path: Path) -> None:
    ledger = read_document(
        Ledger,
        {**GOOD, "mqtt": {"password": "pw"}, "consumer": [{"tags": ["t"]}]},
        tmp_path,
    )
    out = masked(ledger)
    assert out["database"] == {"dsn": "***", "pool": 4}
    assert out["mqtt"]["password"] == "***"
    assert out["mqtt"]["cert_file"] is None
    assert out["central"]["key_dir"] == "/etc/tracescan-central/keys"
    assert out["consumer"] == [{"name": "c0", "share": "all", "tags": ("t",), "paused": False}]
    assert "postgresql" not in repr(ledger)
    assert "pw" not in repr(ledger.mqtt)


def test_reference_lists_every_key_once_with_its_default() -> None:
    rows = {r.key: r.default for r in reference(Ledger)}
    assert rows == {
        "central.key_dir": "`/etc/tracescan-central/keys`",
        "central.topic_prefix": "`tracescan/v1`",
        "central.ack_timeout": "60",
        "mqtt.host": "`127.0.0.1`",
        "mqtt.port": "1883",
        "mqtt.password": "empty",
        "mqtt.cert_file": "none",
        "mqtt.key_file": "none",
        "database.dsn": "required",
        "database.pool": "4",
        "consumer.name": "empty",
        "consumer.share": "`all`",
        "consumer.tags": "`[]`",
        "consumer.paused": "`false`",
    }
    assert reference(Ledger)[0].markdown() == (
        "| `central.key_dir` | `/etc/tracescan-central/keys` | the signing key |"
    )


def test_load_document_reads_a_file_and_takes_paths_beside_it(tmp_path: Path) -> None:
    f = tmp_path / "central.toml"
    f.write_text('[central]\nkey_dir = "keys"\n[database]\ndsn = "postgresql://x"\n')
    assert load_document(Ledger, f).central.key_dir == tmp_path / "keys"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"[central\n", "invalid TOML"),
        (b"\xff\xfe", "not UTF-8"),
        (b"a = " + b"1" * 5000, "invalid TOML"),  # tomllib: ValueError, int too long to convert
        (b"a = " + b"[" * 50_000 + b"]" * 50_000, "nested too deeply"),  # RecursionError
        (b"a = " + b"{b = " * 50_000 + b"1" + b"}" * 50_000, "nested too deeply"),
        (b"#" * (MAX_FILE_BYTES + 1), "larger than"),
    ],
)
def test_a_bad_file_is_one_problem_naming_it(tmp_path: Path, content: bytes, problem: str) -> None:
    f = tmp_path / "bad.toml"
    f.write_bytes(content)
    with pytest.raises(ConfigError) as info:
        load_document(Ledger, f)
    (line,) = info.value.problems
    assert line.startswith(f"{f}: ")
    assert problem in line


def test_an_unreadable_file_is_a_problem(tmp_path: Path) -> None:
    for path in (tmp_path / "missing.toml", tmp_path):
        with pytest.raises(ConfigError, match="cannot read"):
            load_document(Ledger, path)


def test_exit_status_is_sysexits_ex_config() -> None:
    assert EX_CONFIG == 78


toml_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=30)
    | st.dates()
    | st.sampled_from(["", "x" * 5000, "a\x00b", "~", "..", "/"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=6,
)
keys = st.sampled_from(
    [
        "central",
        "mqtt",
        "database",
        "consumer",
        "key_dir",
        "port",
        "dsn",
        "tags",
        "name",
        "cert_file",
        "nope",
    ]
)


@settings(max_examples=150, deadline=None)
@given(
    st.dictionaries(
        keys,
        toml_values
        | st.dictionaries(keys, toml_values)
        | st.lists(st.dictionaries(keys, toml_values), max_size=3),
    )
)
def test_any_document_gives_a_ledger_or_a_config_error(doc: dict[str, object]) -> None:
    try:
        read_document(Ledger, doc, Path("/nonexistent"))
    except ConfigError as exc:
        found = exc.problems
    else:
        return
    assert found
    assert all(": " in line for line in found)
