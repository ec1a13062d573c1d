"""Command barcodes: the worker switches operation, opens/closes a document, undoes the last
scan or acknowledges an alert by scanning a code from a printed sheet (`tracescan sheet`, which
renders it: agent/cli/sheet.py). This module is the pure part: parsing, the commands and labels.

Command codes are Code 128 texts `TSC:<verb>[:<value>]`, which no trace code, GS1 string or
MA code can be confused with:

| text | effect |
|---|---|
| `TSC:OP:<operation>` | set this scanner's operation (e.g. `TSC:OP:receive`) |
| `TSC:DOC:<id>` | open document `<id>` (bill / prescription / order) on this scanner |
| `TSC:END` | close the open document (publishes the reconciliation report for a manifest) |
| `TSC:UNDO` | void this scanner's last accepted scan (a signed void event; nothing is deleted) |
| `TSC:ACK` | acknowledge the alert that stopped this scanner |
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

from agent.rules.operations import OPERATIONS

PREFIX: Final = "TSC:"
Verb = Literal["op", "doc", "end", "undo", "ack"]
_DOC_ID: Final = re.compile(r"[\x21-\x7e]{1,64}")

#: Operation names on the sheet (zh, en).
OPERATION_LABELS: Final[dict[str, tuple[str, str]]] = {
    "receive": ("入库验收", "Receive"),
    "dispatch": ("出库", "Dispatch"),
    "dispense": ("发药", "Dispense"),
    "sale": ("零售", "Retail sale"),
    "return_to_supplier": ("退货给供应商", "Return to supplier"),
    "customer_return": ("销售退回", "Customer return"),
    "destroy": ("销毁", "Destroy"),
    "recall": ("召回", "Recall"),
    "stock_count": ("盘点", "Stock count"),
}


class CommandError(ValueError):
    """A `TSC:` code that is not a valid command (refused like any bad scan)."""


@dataclass(frozen=True, slots=True)
class Command:
    """A parsed command barcode."""

    verb: Verb
    value: str | None = None

    @property
    def text(self) -> str:
        """The barcode text for this command."""
        return f"{PREFIX}{self.verb.upper()}" + (f":{self.value}" if self.value else "")


def is_command(text: str) -> bool:
    """True for anything in the command namespace (valid or not)."""
    return text.startswith(PREFIX)


def parse(text: str) -> Command:
    """Parse a `TSC:` text, raising `CommandError` with what is wrong.

    >>> parse("TSC:OP:receive")
    Command(verb='op', value='receive')
    """
    body = text.strip()[len(PREFIX) :]
    verb, _, value = body.partition(":")
    verb = verb.upper()
    if verb == "OP":
        if value not in OPERATIONS:
            raise CommandError(f"unknown operation {value!r}")
        return Command("op", value)
    if verb == "DOC":
        if not _DOC_ID.fullmatch(value):
            raise CommandError("a document id is 1–64 printable characters")
        return Command("doc", value)
    if verb in ("END", "UNDO", "ACK") and not value:
        return Command("end" if verb == "END" else "undo" if verb == "UNDO" else "ack")
    raise CommandError(f"unknown command {body[:20]!r}")


def sheet_entries(lang: str = "zh") -> list[tuple[Command, str]]:
    """Every command on the printed sheet with its label."""
    idx = 1 if lang == "en" else 0
    # The barcode's own human-readable line already shows the operation's name.
    entries = [(Command("op", op), OPERATION_LABELS[op][idx]) for op in OPERATIONS]
    entries += [
        (Command("end"), "结束单据" if idx == 0 else "End document"),
        (Command("undo"), "撤销上一次扫描" if idx == 0 else "Undo last scan"),
        (Command("ack"), "确认警告" if idx == 0 else "Acknowledge alert"),
    ]
    return entries
