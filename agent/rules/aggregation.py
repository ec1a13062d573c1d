"""Aggregation: which unit codes a case or middle pack holds, as the manufacturer packed them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

_MAX_DEPTH: Final = 4  # pallet → case → middle → unit


@dataclass(frozen=True, slots=True)
class Relations:
    """Parent → children packing relations (as the manufacturer uploaded them)."""

    version: int = 0
    children: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def expand(self, code: str, extra: Relations | None = None) -> tuple[str, ...] | None:
        """The unit codes inside `code` (recursively), or None when it has no known children.

        Uses the actual relation data, never a nominal ratio: mixed (拼箱) and partial (零箱)
        cases expand to exactly what was packed.
        """
        if code not in self.children and not (extra and code in extra.children):
            return None
        units: list[str] = []
        self._collect(code, extra, units, 0)
        return tuple(units)

    def _collect(self, code: str, extra: Relations | None, out: list[str], depth: int) -> None:
        kids = (extra.children.get(code) if extra else None) or self.children.get(code)
        if not kids or depth >= _MAX_DEPTH:
            out.append(code)
            return
        for kid in kids:
            self._collect(kid, extra, out, depth + 1)

    def is_parent(self, code: str) -> bool:
        """True when `code` is known to contain other codes."""
        return code in self.children
