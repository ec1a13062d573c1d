"""The blocklist: recalled or otherwise blocked codes, batches and products."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

BlockType = Literal["code", "batch", "product"]
BLOCK_TYPES: Final[tuple[BlockType, ...]] = ("code", "batch", "product")


@dataclass(frozen=True, slots=True)
class BlockEntry:
    """One blocked code, batch or product, with the reason shown to the worker."""

    type: BlockType
    value: str
    reason: str


#: Which field of a code each entry type is compared with.
_BLOCK_FIELDS: Final = (("batch", "batch"), ("product", "product_code"), ("product", "gtin"))


@dataclass(frozen=True, slots=True)
class Blocklist:
    """Recalled or otherwise blocked codes, batches and products."""

    version: int = 0
    entries: tuple[BlockEntry, ...] = ()
    # (type, value) -> (position, entry) of the first such entry: a scan costs a few lookups,
    # not a walk through a recall list of thousands.
    _first: dict[tuple[str, str], tuple[int, BlockEntry]] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        first: dict[tuple[str, str], tuple[int, BlockEntry]] = {}
        for i, entry in enumerate(self.entries):
            first.setdefault((entry.type, entry.value), (i, entry))
        object.__setattr__(self, "_first", first)

    def match(self, code: str, fields: Mapping[str, object]) -> BlockEntry | None:
        """The entry that blocks this code, if any (the first in the list when several do)."""
        if not self._first:
            return None
        keys = [("code", code)]
        keys += [(t, v) for t, name in _BLOCK_FIELDS if isinstance(v := fields.get(name), str)]
        hits = [hit for key in keys if (hit := self._first.get(key)) is not None]
        return min(hits, key=lambda hit: hit[0])[1] if hits else None
