"""Bounds on values that come from outside: JSON documents and the strings inside them.

Every value that crosses a boundary (the network, the local API, a persisted row) is checked
here before anything uses it: a document too big, too deep or too wide, or a string that is not
printable text, is refused with a `LimitError` naming what is wrong — never a RecursionError or
a terminal escape sequence in a log line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

#: JSON nesting deeper than this is refused (the deepest shape we read has 4 levels).
MAX_DEPTH: Final = 16


class LimitError(ValueError):
    """A value is outside the bounds for where it came from; the message says which."""


@dataclass(frozen=True, slots=True)
class JsonLimits:
    """How big a JSON document may be."""

    max_bytes: int = 4 * 1024 * 1024
    max_depth: int = MAX_DEPTH
    max_items: int = 1_000_000  # values in the whole document (array items, object members)


#: The limits of a document from outside when nothing stricter applies.
DEFAULT_LIMITS: Final = JsonLimits()


def load_json(data: bytes | str, limits: JsonLimits = DEFAULT_LIMITS) -> Any:
    """Parse a JSON document within `limits`, or raise `LimitError` (never anything else).

    >>> load_json('{"a": [1, 2]}')
    {'a': [1, 2]}
    >>> load_json("[" * 100_000)
    Traceback (most recent call last):
    ...
    agent.rules.limits.LimitError: nested too deeply
    """
    size = len(data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data)
    if size > limits.max_bytes:
        raise LimitError(f"{size} bytes, more than {limits.max_bytes}")
    try:
        value = json.loads(data)
    except RecursionError:
        raise LimitError("nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise LimitError(f"not JSON ({str(exc)[:80]})") from None
    _check_shape(value, limits)
    return value


def _check_shape(value: Any, limits: JsonLimits) -> None:
    """Depth and item count, walked without recursion."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    items = 0
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limits.max_depth:
            raise LimitError("nested too deeply")
        items += len(children)
        if items > limits.max_items:
            raise LimitError(f"more than {limits.max_items} values")
        stack.extend((child, depth + 1) for child in children)


def is_printable(text: str, max_len: int) -> bool:
    """Printable text of at most `max_len` characters: no control, escape or line characters.

    >>> is_printable("召回 R-2026-11", 64), is_printable("ok\\n\\x1b[2J", 64)
    (True, False)
    """
    return len(text) <= max_len and text.isprintable()


def shown(text: str) -> str:
    """`text` safe to print on one line of a console or a log: every control, escape, line or
    other non-printable character is written as its escape (`\\n`, `\\x1b`, `\\x1d`), so
    no value from outside can start a forged line or drive the terminal.

    >>> shown("ok\\n2026-11-26 ERROR forged\\x1b[2J")
    'ok\\\\n2026-11-26 ERROR forged\\\\x1b[2J'
    """
    if text.isprintable():
        return text
    return "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text
    )
