"""Aggregation: which unit codes a case or middle pack holds, as the manufacturer packed them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

_MAX_DEPTH: Final = 4  # pallet → case → middle → unit

#: Units one case may stand for unless configured otherwise (`[policy] max_case_units`).
DEFAULT_MAX_CASE_UNITS: Final = 10_000


class TooManyUnits(ValueError):
    """A code would expand into more units than allowed (a runaway or hostile relation set)."""


@dataclass(frozen=True, slots=True)
class Relations:
    """Parent → children packing relations (as the manufacturer uploaded them)."""

    version: int = 0
    children: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def expand(
        self, code: str, extra: Relations | None = None, *, limit: int = DEFAULT_MAX_CASE_UNITS
    ) -> tuple[str, ...] | None:
        """The unit codes inside `code` (recursively), or None when it has no known children.

        Uses the actual relation data, never a nominal ratio: mixed (拼箱) and partial (零箱)
        cases expand to exactly what was packed. Raises `TooManyUnits` past `limit` units,
        before building them: one scan never turns into an unbounded number of events.
        """
        if code not in self.children and not (extra and code in extra.children):
            return None
        units: list[str] = []
        stack: list[tuple[str, int]] = [(code, 0)]
        while stack:  # depth first, children in their order
            current, depth = stack.pop()
            kids = (extra.children.get(current) if extra else None) or self.children.get(current)
            if not kids or depth >= _MAX_DEPTH:
                units.append(current)
                if len(units) > limit:
                    raise TooManyUnits(f"{code} holds more than {limit} units")
                continue
            stack.extend((kid, depth + 1) for kid in reversed(kids))
        return tuple(units)

    def is_parent(self, code: str) -> bool:
        """True when `code` is known to contain other codes."""
        return code in self.children

    def largest(self, limit: int) -> tuple[str, int] | None:
        """The first parent that expands past `limit` units (with the count reached), if any.

        Counts are shared between parents that hold the same child, so this costs the size of
        the relation set, not the sum of every expansion.
        """
        counts: dict[tuple[str, int], int] = {}

        def units(code: str, depth: int) -> int:
            stack: list[tuple[str, int, bool]] = [(code, depth, False)]
            while stack:
                current, level, expanded = stack.pop()
                if (current, level) in counts:
                    continue
                kids = self.children.get(current)
                if not kids or level >= _MAX_DEPTH:
                    counts[current, level] = 1
                elif expanded:
                    counts[current, level] = min(
                        limit + 1, sum(counts[kid, level + 1] for kid in kids)
                    )
                else:
                    stack.append((current, level, True))
                    stack.extend((kid, level + 1, False) for kid in kids)
            return counts[code, depth]

        for parent in self.children:
            if (n := units(parent, 0)) > limit:
                return parent, n
        return None
