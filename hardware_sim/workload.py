"""Generators of realistic scan streams."""

from __future__ import annotations

import random
from typing import Final

#: Product codes used by the demo and tests: a unit, a middle pack and a case of one drug.
DEMO_UNIT_PREFIX: Final = "8123456"
DEMO_MIDDLE_PREFIX: Final = "8123457"
DEMO_CASE_PREFIX: Final = "8123458"

DEMO_CATALOG_CSV: Final = (
    "code,level,ratio,name\n"
    f"{DEMO_UNIT_PREFIX},unit,1,阿莫西林胶囊 0.25g*24粒\n"
    f"{DEMO_MIDDLE_PREFIX},middle,10,阿莫西林胶囊 中包装(10盒)\n"
    f"{DEMO_CASE_PREFIX},case,100,阿莫西林胶囊 大箱(100盒)\n"
)


def trace_code(prefix: str, serial: int, rng: random.Random | None = None) -> str:
    """A 20-digit trace code: prefix (7) + serial (9) + 4 check digits.

    The real check digits are platform-issued and unknown offline; simulated ones are random.
    """
    check = (rng or random).randrange(10_000)
    return f"{prefix}{serial:09d}{check:04d}"


def unit_codes(
    n: int, *, prefix: str = DEMO_UNIT_PREFIX, start: int = 1, seed: int = 7
) -> list[str]:
    """`n` distinct unit codes with consecutive serials."""
    rng = random.Random(seed)
    return [trace_code(prefix, start + i, rng) for i in range(n)]
