"""The agent's sections: values parsed, every mistake reported, hostile files refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.config import Config, ConfigError, parse
from agent.config.schema import Reference, reference

BASE = {"device": {"id": "d1", "site": "s1", "data_dir": "data", "key_dir": "keys"}}


def test_sections_parse(tmp_path: Path) -> None:
    (tmp_path / "ok.wav").write_bytes(b"RIFF")
    cfg = parse(
        {
            **BASE,
            "feedback": {"bell": True, "beeper_refused": "\u0015E", "sound_held": "ok.wav"},
            "api": {"socket": "run/api.sock", "prometheus_port": 9108},
            "status": {"upload_deadline_days": 5, "holidays": ["2026-10-01"]},
        },
        tmp_path,
    )
    assert cfg.feedback.bell
    assert cfg.feedback.beeper_refused == "\x15E"
    assert cfg.feedback.sound_held == tmp_path / "ok.wav"
    assert cfg.api.socket == tmp_path / "run" / "api.sock"
    assert cfg.api.prometheus_port == 9108
    assert cfg.status.upload_deadline_days == 5
    assert cfg.status.holidays == ("2026-10-01",)
    assert cfg.masked()["status"]["holidays"] == ("2026-10-01",)


def test_mistakes_are_all_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        parse(
            {
                **BASE,
                "feedback": {"beeper_held": "嘀", "sound_accepted": "missing.wav", "bel": True},
                "api": {"prometheus_port": 70000},
                "status": {"holidays": ["2026-02-30"], "upload_deadline_days": 0},
            },
            tmp_path,
        )
    text = "\n".join(err.value.problems)
    for key in (
        "feedback.beeper_held",
        "feedback.sound_accepted",
        "feedback.bel: unknown key (did you mean 'bell'?)",
        "api.prometheus_port",
        "status.holidays",
        "status.upload_deadline_days",
    ):
        assert key in text
    assert err.value.problems == [
        "feedback.beeper_held: only bytes \\u0000..\\u00ff can be sent to a scanner",
        f"feedback.sound_accepted: file {str(tmp_path / 'missing.wav')!r} does not exist",
        "feedback.bel: unknown key (did you mean 'bell'?)",
        "api.prometheus_port: 70000 is outside 0..65535",
        "status.upload_deadline_days: 0 is outside 1..365",
        "status.holidays[0]: '2026-02-30' is not a calendar date",
    ]


# --- every key, declared once --------------------------------------------------------------


def toml_form(value: object) -> object:
    """A default as it would be written in the file."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return [toml_form(v) for v in value]
    return value


@pytest.mark.parametrize("ref", reference(Config), ids=lambda r: r.key)
def test_every_default_is_a_value_its_own_kind_accepts(ref: Reference) -> None:
    spec = ref.setting
    assert spec.help.strip(), "every key has a line of help"
    if spec.required or spec.default is None:
        return
    if ref.key == "scanner.name":
        assert spec.default == ""  # the name is `{type}{index}` then: ScannerConfig.named
        return
    assert spec.kind.read(toml_form(spec.default), Path("/")) == spec.default


def test_the_scanner_name_defaults_to_type_and_position(tmp_path: Path) -> None:
    cfg = parse(
        {
            **BASE,
            "scanner": [{"port": "a"}, {"type": "hid", "port": "b"}, {"port": "c", "name": "x"}],
        },
        tmp_path,
    )
    assert [s.name for s in cfg.scanners] == ["serial0", "hid1", "x"]


@pytest.mark.parametrize(
    ("roi", "ok"),
    [
        ([0, 0, 1, 1], True),
        ([10, 20, 640, 360], True),
        ([0, 0, 0, 10], False),
        ([0, 0, 10, 0], False),
        ([0, 0, 10], False),
        ([0, 0, 10, 10, 10], False),
        ([-1, 0, 10, 10], False),
        ([0, 0, 100_000, 10], False),
        ([0, 0, 1.5, 10], False),
        ([0, 0, True, 10], False),
        (["0", "0", "10", "10"], False),
        ("0,0,10,10", False),
    ],
)
def test_roi_is_a_rectangle(tmp_path: Path, roi: object, ok: bool) -> None:
    doc = {**BASE, "scanner": [{"type": "camera", "port": "0", "roi": roi}]}
    if ok:
        assert parse(doc, tmp_path).scanners[0].roi == tuple(roi)  # type: ignore[arg-type]
    else:
        with pytest.raises(ConfigError) as err:
            parse(doc, tmp_path)
        (line,) = err.value.problems
        assert line.startswith(
            "scanner[0].roi: must be [x, y, width, height] with width, height > 0"
        )


def test_cross_field_rules(tmp_path: Path) -> None:
    (tmp_path / "c.pem").write_text("x")
    with pytest.raises(ConfigError) as err:
        parse(
            {
                "device": {"id": "d", "site": "s", "data_dir": "d", "key_dir": "d"},
                "mqtt": {"cert_file": "c.pem"},
                "scanner": [
                    {"type": "hid", "port": "x", "layout": "calibrated"},
                    {"port": "y", "name": "hid0"},
                ],
            },
            tmp_path,
        )
    assert err.value.problems == [
        "device.key_dir: must be outside device.data_dir (keys never live beside the data)",
        'scanner[0].keymap_file: required with layout = "calibrated"',
        "mqtt.cert_file: mutual TLS needs both cert_file and key_file",
        "scanner.name: 'hid0' is used by more than one scanner",
    ]


def test_key_dir_check_survives_a_symlink_loop(tmp_path: Path) -> None:
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    cfg = parse(
        {"device": {"id": "d", "site": "s", "data_dir": "loop", "key_dir": "keys"}}, tmp_path
    )
    assert cfg.device.data_dir == tmp_path / "loop"
    with pytest.raises(ConfigError, match=r"device\.key_dir: must be outside"):
        parse(
            {"device": {"id": "d", "site": "s", "data_dir": "loop", "key_dir": "loop/k"}}, tmp_path
        )


@pytest.mark.parametrize("device_id", ["master", "cmd", "status", "event", "Master", "REPORT"])
def test_a_device_id_that_names_a_site_wide_topic_is_refused(
    tmp_path: Path, device_id: str
) -> None:
    # {prefix}/{site}/master/... is the site's master data: a device named `master` would
    # publish into it (issue 15). `tracescan pki device` refuses the same ids.
    with pytest.raises(ConfigError) as err:
        parse({"device": {**BASE["device"], "id": device_id}}, tmp_path)
    assert len(err.value.problems) == 1
    assert err.value.problems[0].startswith(f"device.id: {device_id!r} is reserved")


def test_ids_that_merely_contain_a_reserved_word_are_fine(tmp_path: Path) -> None:
    for device_id in ("master-01", "cmd2", "status_board"):
        assert (
            parse({"device": {**BASE["device"], "id": device_id}}, tmp_path).device.id == device_id
        )


# --- hostile files ---------------------------------------------------------------------------


def every_key_set_to(value: object) -> dict[str, object]:
    doc: dict[str, dict[str, object]] = {}
    for ref in reference(Config):
        section, key = ref.key.split(".")
        doc.setdefault(section, {})[key] = value
    return {**doc, "scanner": [doc["scanner"]]}


@pytest.mark.parametrize(
    "value",
    [
        {"x": {"y": [1, {"z": 2}]}},  # a table where a value belongs
        [[[[["deep"]]]]],
        10**5000,  # repr() raises ValueError past 4300 digits
        -(2**63),
        float("nan"),
        "x" * 1_000_000,
        "a\x00b",
        [0] * 100_000,
    ],
    ids=["table", "nested-list", "huge-int", "min-int", "nan", "1MB-string", "nul", "long-list"],
)
def test_every_key_wrong_at_once_is_a_config_error_naming_the_keys(
    tmp_path: Path, value: object
) -> None:
    with pytest.raises(ConfigError) as err:
        parse(every_key_set_to(value), tmp_path)
    text = "\n".join(err.value.problems)
    assert len(text) < 200_000  # hostile values are cut, not echoed
    if isinstance(value, dict | int | float):  # a wrong type for every key, so each is named
        for ref in reference(Config):
            section, key = ref.key.split(".")
            name = f"scanner[0].{key}" if section == "scanner" else ref.key
            assert f"\n{name}" in f"\n{text}", name


scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.dates()
    | st.sampled_from(["", "x" * 5000, "a\x00b", "~", "/", "calibrated", "2026-02-30"])
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=5,
)
SECTION_KEYS = {
    section: sorted({r.key.split(".")[1] for r in reference(Config) if r.key.startswith(section)})
    for section in {r.key.split(".")[0] for r in reference(Config)}
}
sections = st.sampled_from(sorted(SECTION_KEYS)).flatmap(
    lambda name: st.tuples(
        st.just(name),
        st.dictionaries(st.sampled_from([*SECTION_KEYS[name], "typo"]), values, max_size=4),
    )
)


@settings(max_examples=150, deadline=None)
@given(st.lists(sections, max_size=5), st.sampled_from(["table", "array", "value"]))
def test_any_document_gives_a_config_or_a_config_error(
    tables: list[tuple[str, dict[str, object]]], scanner_shape: str
) -> None:
    doc: dict[str, object] = dict(tables)
    if "scanner" in doc and scanner_shape != "table":
        doc["scanner"] = [doc["scanner"]] if scanner_shape == "array" else "serial"
    try:
        parse(doc, Path("/nonexistent"))
    except ConfigError as exc:
        found = exc.problems
    else:
        return
    assert found
    assert all(": " in line for line in found)
