"""The docstring examples in agent/codes and agent/messages run as tests."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "agent.codes.cn20",
    "agent.codes.commodity",
    "agent.codes.gs1",
    "agent.codes.gs1_dictionary",
    "agent.codes.ma",
    "agent.codes.model",
    "agent.codes.normalise",  # shadowed by the function of the same name in agent.codes
    "agent.rules.reasons",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
