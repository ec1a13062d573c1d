"""Whether a recognised code is acceptable for the operation in force: level and expiry.

Pure functions: the code, the operation, master data and today's date in; a `Decision` out.
Stateful rules (double reads, custody, blocklist, manifests) build on this in `agent/service`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from agent.codes import (
    DEFAULT_GS_STANDINS,
    Code,
    CodeError,
    FieldValue,
    Kind,
    PackLevel,
    recognise,
)
from agent.codes.model import pack_identity
from agent.rules.catalog import Catalog
from agent.rules.operations import DISPENSING, Operation
from agent.rules.reasons import Reason, message


@dataclass(frozen=True, slots=True)
class Decision:
    """The verdict on one input, in the shape of SPEC.md's `check` output.

    `variant` selects a more specific worker message for the same reason (see agent.rules.reasons).
    """

    input: str
    accepted: bool
    kind: Kind
    level: PackLevel
    reason: Reason | None
    text: str
    fields: dict[str, FieldValue] = field(default_factory=dict)
    symbology: str | None = None
    variant: str | None = None
    detail: str = ""  # what the worker needs beyond the reason (a recall notice, a bill id)

    @property
    def identity(self) -> str:
        """The pack this decision is about, however its code was spelled (see `pack_identity`)."""
        return pack_identity(self.kind, self.text, self.fields)

    def message(self, lang: str = "zh") -> str:
        """The worker-facing sentence for this decision."""
        base = message(self.reason, lang, self.variant)
        return f"{base} ({self.detail})" if self.detail else base

    def as_check_output(self, lang: str = "zh") -> dict[str, object]:
        """The JSON object `tracescan check` prints."""
        return {
            "input": self.input,
            "accepted": self.accepted,
            "kind": self.kind,
            "level": self.level,
            "reason": self.reason,
            "message": self.message(lang),
            "fields": self.fields,
        }

    def refused(self, reason: Reason) -> Decision:
        """The same input refused for `reason` (e.g. when storage fails)."""
        return Decision(
            self.input, False, self.kind, self.level, reason, self.text, self.fields, self.symbology
        )


def judge(code: Code, *, op: Operation, catalog: Catalog, today: dt.date, raw: str) -> Decision:
    """Apply the packaging-level guard and the expiry rule for `op`."""
    level = catalog.level_of(code)
    reason: Reason | None = None
    # Expiry is judged against the local date the scan happened on, passed in (no clock here).
    if op in DISPENSING:
        if level in ("middle", "case", "pallet"):
            reason = "level_not_allowed"
        else:
            expiry = code.fields.get("expiry")
            if isinstance(expiry, str) and dt.date.fromisoformat(expiry) < today:
                reason = "expired"
    return Decision(
        raw, reason is None, code.kind, level, reason, code.text, dict(code.fields), code.symbology
    )


def assess(
    raw: str,
    *,
    op: Operation,
    catalog: Catalog,
    today: dt.date,
    gs_standins: tuple[str, ...] = DEFAULT_GS_STANDINS,
    gs_replacement: str | None = None,
) -> Decision:
    """Recognise and judge one raw input: the stateless half of every scan's decision.

    Never raises for any input text: every refusal is a `Decision` with a stable reason.
    """
    try:
        code = recognise(raw, gs_standins=gs_standins, gs_replacement=gs_replacement)
    except CodeError as exc:
        return Decision(
            raw,
            False,
            exc.kind,
            "pallet" if exc.kind == "sscc" else "unknown",
            exc.reason,
            _printable(raw),
            dict(exc.fields),
            variant=exc.variant,
            detail=exc.where,
        )
    return judge(code, op=op, catalog=catalog, today=today, raw=raw)


def _printable(raw: str) -> str:
    """A bounded, control-free rendering of refused input for the reject record."""
    text = raw.strip()[:128]
    return "".join(ch if " " <= ch <= "~" or ch == "\x1d" else "\ufffd" for ch in text)
