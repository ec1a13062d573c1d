"""The [feedback], [api] and [status] sections: values parsed, every mistake reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import ConfigError, parse

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
