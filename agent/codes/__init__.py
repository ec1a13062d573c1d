"""Pure code recognition: text in, a `Code` or a `CodeError` with a stable reason out.

No I/O and no clock: the daemon, `tracescan check` and the local API all call `recognise`.
"""

from __future__ import annotations

from agent.codes.classify import classify
from agent.codes.model import Code, CodeError, FieldValue, Kind, PackLevel
from agent.codes.normalise import DEFAULT_GS_STANDINS, GS, Normalised, normalise

__all__ = [
    "DEFAULT_GS_STANDINS",
    "GS",
    "Code",
    "CodeError",
    "FieldValue",
    "Kind",
    "Normalised",
    "PackLevel",
    "classify",
    "normalise",
    "recognise",
]


def recognise(
    raw: str,
    *,
    gs_standins: tuple[str, ...] = DEFAULT_GS_STANDINS,
    gs_replacement: str | None = None,
) -> Code:
    """Normalise and classify one scanner input."""
    return classify(normalise(raw, gs_standins=gs_standins, gs_replacement=gs_replacement))
