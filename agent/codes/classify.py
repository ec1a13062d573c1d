"""Decide which code family a normalised text belongs to, in the order DOMAIN.md requires.

Plain 20-digit numerics are Chinese trace codes and are classified **before** any GS1 attempt:
a naive GS1 parser reads some `80…` codes as AI 8004/8020 element strings.
"""

from __future__ import annotations

from agent.codes import cn20
from agent.codes.model import Code, CodeError
from agent.codes.normalise import Normalised


def classify(n: Normalised) -> Code:
    """Return the recognised `Code` for normalised input or raise `CodeError`."""
    text = n.text
    if cn20.looks_like(text):
        return cn20.TraceCode.parse(text).to_code(n.symbology)
    if text.isdigit() and len(text) in (19, 21):
        raise CodeError(
            "bad_length", f"{len(text)} digits: a trace code has exactly 20", kind="cn20"
        )
    raise CodeError("unknown_format", f"{text[:40]!r} is not a known trace code format")
