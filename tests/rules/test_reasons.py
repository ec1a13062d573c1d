"""agent/rules/reasons.py: every reason has a worker message in Chinese and English."""

from __future__ import annotations

import pytest

from agent.rules.reasons import MESSAGES, REASONS, SPEC_REASONS, is_reason, message


@pytest.mark.parametrize("reason", SPEC_REASONS)
def test_every_spec_reason_has_chinese_and_english(reason: str) -> None:
    zh, en = MESSAGES[reason]
    assert zh
    assert en
    assert any("\u4e00" <= ch <= "\u9fff" for ch in zh)
    assert en.isascii() or "追溯码" in en


def test_every_message_has_both_languages_and_every_variant_a_base_reason() -> None:
    # Reasons may be added (SPEC: "more may be added, never renamed"); variants refine one.
    for key, (zh, en) in MESSAGES.items():
        assert key.split(".")[0] in MESSAGES
        assert zh
        assert en


def test_every_reason_a_refusal_can_carry_has_a_message() -> None:
    for reason in REASONS:
        assert reason in MESSAGES, reason
        assert is_reason(reason)
    assert not is_reason("accepted")
    assert not is_reason(None)


def test_an_unknown_variant_falls_back_to_the_reasons_sentence() -> None:
    assert message("blocked", "en", "no-such-variant") == MESSAGES["blocked"][1]
    assert message(None, "zh") == MESSAGES["accepted"][0]
