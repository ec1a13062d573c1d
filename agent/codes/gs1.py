"""GS1 element strings (GS1 DataMatrix, GS1-128, GS1 QR, GS1 Digital Link) and the SSCC.

A GS1 message is judged the way the GS1 Barcode Syntax Engine judges it, from the GS1 Barcode
Syntax Dictionary (`gs1_dictionary`) and its linters (`gs1_linters`): every AI must exist, each
value must have its AI's length, character set (numeric, CSET 82/39/64) and content (check
digits, dates, country and currency codes, ...), and the AIs must go together (`req=`/`ex=`
pairings, one value per AI). Then this module decides what a trace scan needs: a GTIN `(01)`
and a serial `(21)` for a saleable pack, or an SSCC `(00)` for a logistic unit.

Three spellings of one message are read:
- scanned data (`]d2`/`]C1`/`]Q3` + element string, GS as 0x1D), split the engine's way: an AI
  is found by its two-digit prefix, a pre-defined-length AI takes exactly its length, any other
  runs to the next GS (or its maximum, after which a GS must follow);
- HRI `(01)…(21)…`: the parentheses are the boundaries, so `(100)1234` is the unknown AI (100),
  never `(10)01234`; `\\(` is a bracket in the data; blanks around the brackets are layout;
- a GS1 Digital Link URI (`https://…/01/…/21/…`), parsed by biip into element strings.

A GS1 message is tried only when the input says it is one (DOMAIN.md): a GS1 symbology
identifier, a GS character, HRI, a Digital Link URI, or a leading `01`/`00` followed by digits.
Plain 20-digit `8…` numerics never reach this module: they would read as AI 8004/8020.

**Lost separators.** Without GS, a variable-length field swallows the fields after it: `(10)`
swallows `(21)`, or `(21)` swallows `(10)` and the pack is accepted with a wrong serial. No
split of such a run is ever provably right (a serial may contain `10`), so when the input has
no GS at all and a `(10)`/`(21)` value contains the digits of another of `(10)`, `(21)`,
`(17)` that the message does not already hold, the scan is refused as `gs1_structure`
(message variant `separator_lost`) instead of guessing. So the usual `01 17 10 21` drug label
read without GS is refused (the batch swallowed the serial), while `01 17 10…<GS>21…` and a
label whose only variable field comes last (`01 17 21…`) are accepted as read. The price: a
GS-less `01 17 21…` whose serial happens to contain `10` is refused too; the remedy is the
scanner's GS (FNC1) transmission setting, which the worker message names.

Two-digit `(17)` years are placed in the century by biip, relative to the current year (GS1
General Specifications 7.12): the one clock read in this otherwise pure package.
"""

from __future__ import annotations

import functools
import re
from typing import Final

from agent.codes.gs1_dictionary import AiSpec, Component, ai_at, lookup
from agent.codes.gs1_linters import CSET_LINTERS, DATE_LINTERS, LINTERS, Lint, csum
from agent.codes.model import Code, CodeError, FieldValue, Kind, RecognitionReason
from agent.codes.normalise import GS, Normalised

#: One element string: (AI, value).
Element = tuple[str, str]

#: For each field we read that can swallow others: what another field looks like inside it.
#: The leading `.` requires at least one character of the swallowing field itself.
_EMBEDDED: Final[dict[str, re.Pattern[str]]] = {
    "10": re.compile(r".10."),
    "21": re.compile(r".21."),
    # Only a plausible YYMMDD counts, so fewer serials that merely contain 17 are refused.
    "17": re.compile(r".17\d\d(?:0[1-9]|1[0-2])(?:[0-2]\d|3[01])"),
}
_VARIABLE_READ: Final = ("10", "21")

#: Linter faults by the stable reason they are refused with; any other fault is `bad_value`.
_REASONS: Final[dict[str, RecognitionReason]] = {
    "non_digit_character": "bad_charset",
    "invalid_cset82_character": "bad_charset",
    "invalid_cset39_character": "bad_charset",
    "invalid_cset64_character": "bad_charset",
    "invalid_cset64_padding": "bad_charset",
    "invalid_iban_character": "bad_charset",
    "incorrect_check_digit": "bad_check_digit",
    "incorrect_check_pair": "bad_check_digit",
    "incorrect_iban_checksum": "bad_check_digit",
    "too_short_for_check_digit": "bad_length",
    "too_short_for_check_pair": "bad_length",
    "too_long_for_check_pair_implementation": "bad_length",
    "too_short_for_gcp": "bad_length",
    "coupon_invalid_expiration_date": "bad_date",
    "coupon_invalid_start_date": "bad_date",
    "coupon_expiration_before_start": "bad_date",
}

#: An AI between brackets, with the blanks around it that are layout rather than data.
_HRI_AI: Final = re.compile(r"\s*\(\s*(\d*)\s*\)\s*")
_DIGITAL_LINK: Final = re.compile(r"https?://", re.IGNORECASE)
#: The AIM identifiers that announce a GS1 message, as biip reads them (ISO/IEC 15424; biip does
#: not know DotCode's `]J`, so neither do we).
_GS1_MESSAGE_SYMBOLOGIES: Final = frozenset({"]C1", "]d2", "]e0", "]Q3"})


def check_digit_ok(digits: str) -> bool:
    """Mod-10 check digit of a GTIN-8/12/13/14 or SSCC (the GS1 `csum` linter).

    >>> check_digit_ok("06901234567892"), check_digit_ok("06901234567893")
    (True, False)
    """
    return len(digits) > 1 and digits.isascii() and csum(digits) is None


@functools.lru_cache(maxsize=64)
def is_gs1_symbology(symbology: str) -> bool:
    """True when an AIM symbology identifier announces GS1 data (`]C1`, `]d2`, `]Q3`, `]e0`…).

    biip's `GS1Symbology.with_gs1_messages()` as a set (tests/codes/test_gs1.py compares the
    two over every identifier): asking biip would load it (~22 MB) for every `]C0` cn20 scan.
    """
    return symbology[:3] in _GS1_MESSAGE_SYMBOLOGIES


def is_digital_link(text: str) -> bool:
    """An http(s) URI: the only kind of GS1 Digital Link URI (read when it carries GS1 keys)."""
    return _DIGITAL_LINK.match(text) is not None


def looks_like(n: Normalised) -> bool:
    """Whether the classifier should try GS1 on this input at all (see the module docstring)."""
    text = n.text
    if GS in text or text.startswith("(") or is_digital_link(text):
        return True
    if n.symbology is not None and is_gs1_symbology(n.symbology):
        return True
    if text.startswith("01"):
        return len(text) >= 16 and text[2:16].isascii() and text[2:16].isdigit()
    if text.startswith("00"):
        return len(text) >= 20 and text[2:20].isascii() and text[2:20].isdigit()
    return False


def parse(n: Normalised) -> Code:
    """Parse a GS1 message into a `gs1` or `sscc` Code, or raise `CodeError`.

    >>> code = parse(Normalised("0106901234567892172512001012345" + GS + "21ABC"))
    >>> code.kind, code.fields["expiry"], code.fields["serial"]
    ('gs1', '2025-12-31', 'ABC')
    >>> parse(Normalised("(01)09506000134352(21)ABC123(100)1234"))
    Traceback (most recent call last):
    ...
    agent.codes.model.CodeError: (100) is not a GS1 application identifier
    """
    text = n.text
    if text.startswith("("):
        elements = _split_hri(text)
    elif is_digital_link(text):
        elements = _from_digital_link(text)
    else:
        elements = _split_scanned(text)
    values = _associated(elements)
    canonical = _element_string(elements)

    if "00" in values:
        return Code(
            text=canonical,
            kind="sscc",
            fields={"sscc": values["00"]},
            level="pallet",
            symbology=n.symbology,
        )
    gtin = values.get("01")
    if gtin is None:
        raise CodeError(
            "gs1_structure",
            f"GS1 message {text[:60]!r} has no GTIN (01) and no SSCC (00)",
            kind="gs1",
            variant="no_gtin",
            where="AI (01) GTIN",
        )
    fields: dict[str, FieldValue] = {"gtin": gtin}
    if "10" in values:
        fields["batch"] = values["10"]
    if "17" in values:
        fields["expiry"] = _expiry(values["17"])
    if GS not in text and not text.startswith("(") and not is_digital_link(text):
        _refuse_swallowed(values, text, fields)
    serial = values.get("21")
    if serial is None:
        raise CodeError(
            "gs1_structure",
            f"GS1 message {text[:60]!r} has no serial (21): it names a product, not a pack",
            kind="gs1",
            fields=fields,
            variant="no_serial",
            where="AI (21) SERIAL",
        )
    fields["serial"] = serial
    return Code(text=canonical, kind="gs1", fields=fields, symbology=n.symbology)


def _split_scanned(text: str) -> list[Element]:
    """Split scanned data into element strings, validating each (the engine's raw-data rules)."""
    elements: list[Element] = []
    gs_lost = GS not in text
    pos = 0
    while pos < len(text):
        ai = ai_at(text[pos : pos + 4])
        if ai is None:
            raise _unknown_ai(text[pos : pos + 4], elements)
        spec = _spec(ai)
        start = pos + len(ai)
        end = text.find(GS, start)
        if end < 0:
            end = len(text)
        if spec.fixed:
            end = min(end, start + spec.max_length)
        used = _check_value(ai, spec, text[start:end], elements)
        elements.append((ai, text[start : start + used]))
        pos = start + used
        if pos < len(text) and text[pos] != GS and not spec.fixed:
            if gs_lost and ai in _VARIABLE_READ:
                # With no GS in the whole scan, an over-long batch or serial is most likely
                # two fields run together: say so rather than "too long".
                raise _fault(
                    "gs1_structure",
                    f"no GS separator in {text[:60]!r}: ({ai}) runs past its "
                    f"{spec.max_length} characters into the next field",
                    ai,
                    spec,
                    elements,
                    variant="separator_lost",
                )
            raise _fault(
                "bad_length",
                f"({ai}) {spec.title} is longer than {spec.max_length} characters",
                ai,
                spec,
                elements,
            )
        if pos < len(text) and text[pos] == GS:  # even after a fixed-length field
            pos += 1
    return elements


def _split_hri(text: str) -> list[Element]:
    """Split HRI `(AI)value(AI)value` at its brackets and validate each element."""
    elements: list[Element] = []
    pos = 0
    while pos < len(text):
        bracket = _HRI_AI.match(text, pos)
        if bracket is None:
            raise CodeError(
                "gs1_structure",
                f"{text[:60]!r} is not well-formed HRI '(AI)data(AI)data' at {text[pos:][:12]!r}",
                kind="gs1",
                variant="malformed",
            )
        ai = bracket.group(1)
        spec = lookup(ai) if 2 <= len(ai) <= 4 else None
        if spec is None:
            raise _unknown_ai(ai, elements, bracketed=True)
        pos = bracket.end()
        value: list[str] = []
        while True:
            # A value runs to the next AI's bracket; `\(` is a bracket in the data, and
            # blanks before an AI's bracket are layout.
            stop = text.find("(", pos)
            if stop < 0:
                value.append(text[pos:])
                pos = len(text)
                break
            if stop > pos and text[stop - 1] == "\\":
                value.append(text[pos : stop - 1] + "(")
                pos = stop + 1
                continue
            value.append(text[pos:stop].rstrip())
            pos = stop
            break
        data = "".join(value)
        if not data:
            raise _fault("bad_length", f"({ai}) {spec.title} has no data", ai, spec, elements)
        if not spec.min_length <= len(data) <= spec.max_length:
            bound = (
                f"at least {spec.min_length}"
                if len(data) < spec.min_length
                else f"at most {spec.max_length}"
            )
            raise _fault(
                _length_reason(spec.components[0]),
                f"({ai}) {spec.title} has {len(data)} characters, {bound} expected",
                ai,
                spec,
                elements,
            )
        _check_value(ai, spec, data, elements)
        elements.append((ai, data))
    if not elements:
        raise CodeError("gs1_structure", f"{text[:60]!r} holds no element", kind="gs1")
    return elements


def _from_digital_link(text: str) -> list[Element]:
    """The element strings of a GS1 Digital Link URI (biip parses it), each validated."""
    # biip (~22 MB of tables) is loaded by the first scan that needs it, never at start-up.
    from biip import ParseError  # noqa: PLC0415
    from biip.gs1_digital_link_uris import GS1DigitalLinkURI  # noqa: PLC0415

    try:
        uri = GS1DigitalLinkURI.parse(text)
    except ParseError as exc:
        # A web address that carries no GS1 key is no code of ours, not a broken GS1 code.
        raise CodeError(
            "unknown_format", f"{text[:60]!r} is not a GS1 Digital Link URI: {exc}"
        ) from None
    elements: list[Element] = []
    for element in uri.element_strings:
        ai, data = element.ai.ai, element.value
        spec = _spec(ai)
        if not spec.min_length <= len(data) <= spec.max_length:
            raise _fault(
                "bad_length", f"({ai}) {spec.title} has {len(data)} characters", ai, spec, elements
            )
        _check_value(ai, spec, data, elements)
        elements.append((ai, data))
    return elements


def _spec(ai: str) -> AiSpec:
    spec = lookup(ai)
    if spec is None:  # biip knows an AI the dictionary does not (a newer or retired one)
        raise _unknown_ai(ai, [], bracketed=True)
    return spec


def _check_value(ai: str, spec: AiSpec, data: str, before: list[Element]) -> int:
    """Validate `data` against the AI's components; return how much of it they take.

    Each component takes up to its maximum length of what is left; an optional component
    with nothing left is skipped. The component's character set is checked first, then its
    linters in the dictionary's order, and the first fault is the refusal.
    """
    if not data:
        raise _fault("bad_length", f"({ai}) {spec.title} has no data", ai, spec, before)
    pos = 0
    for component in spec.components:
        size = min(component.max, len(data) - pos)
        if component.optional and size == 0:
            continue
        if size < component.min:
            raise _fault(
                _length_reason(component),
                f"({ai}) {spec.title}: {data[:24]!r} is too short",
                ai,
                spec,
                before,
            )
        part = data[pos : pos + size]
        fault = CSET_LINTERS[component.cset](part)
        names = iter(component.linters)
        while fault is None:
            name = next(names, None)
            if name is None:
                break
            fault = LINTERS[name](part)
        if fault is not None:
            raise _linted(ai, spec, component, data, offset=pos, fault=fault, before=before)
        pos += size
    return pos


def _length_reason(component: Component) -> RecognitionReason:
    """A date field of the wrong length is a bad date; any other field has a bad length."""
    return "bad_date" if DATE_LINTERS.intersection(component.linters) else "bad_length"


def _linted(
    ai: str,
    spec: AiSpec,
    component: Component,
    data: str,
    *,
    offset: int,
    fault: Lint,
    before: list[Element],
) -> CodeError:
    reason: RecognitionReason
    if DATE_LINTERS.intersection(component.linters):
        reason = "bad_date"  # a date with a letter in it is a bad date, not a charset problem
    else:
        reason = _REASONS.get(fault.error, "bad_value")
    where = offset + fault.position + 1
    return _fault(
        reason,
        f"({ai}) {spec.title} {data[:40]!r}: {fault.error.replace('_', ' ')} at character {where}",
        ai,
        spec,
        before,
        value=data,
    )


def _fault(
    reason: RecognitionReason,
    detail: str,
    ai: str,
    spec: AiSpec,
    before: list[Element],
    *,
    value: str | None = None,
    variant: str | None = None,
) -> CodeError:
    """A refusal that names the AI at fault; an SSCC or GTIN fault keeps its number."""
    kind: Kind = "sscc" if ai == "00" or any(a == "00" for a, _ in before) else "gs1"
    fields: dict[str, FieldValue] = {}
    if value is not None and ai == "00":
        fields["sscc"] = value
    elif value is not None and ai == "01":
        fields["gtin"] = value
    if variant is None and reason in ("bad_charset", "bad_length"):
        variant = "gs1"
    return CodeError(
        reason, detail, kind=kind, fields=fields, variant=variant, where=f"AI ({ai}) {spec.title}"
    )


def _unknown_ai(ai: str, before: list[Element], *, bracketed: bool = False) -> CodeError:
    kind: Kind = "sscc" if any(a == "00" for a, _ in before) else "gs1"
    shown = f"({ai})" if bracketed else f"{ai!r}"
    return CodeError(
        "gs1_structure",
        f"{shown} is not a GS1 application identifier"
        if bracketed
        else f"no GS1 application identifier at {shown}",
        kind=kind,
        variant="unknown_ai",
        where=f"AI ({ai})" if bracketed else f"AI {ai!r}?",
    )


def _associated(elements: list[Element]) -> dict[str, str]:
    """The AI → value map, once the AIs are known to go together.

    The engine's locked validations: no mutually exclusive pair (`ex=`), one value per AI
    (a repeat with the same value is fine), a serialised key under a digital signature.
    Requisites (`req=`) are not a reason to refuse a scan: GS1 evaluates them "over the
    combined data received from all GS1 carriers marking a physical item" (Syntax
    Dictionary), and a scan is one carrier; the engine makes them the one validation a
    reader may switch off. A pack's own requirement, (01) with (21), is checked after this.
    """
    values: dict[str, str] = {}
    for ai, data in elements:
        values.setdefault(ai, data)
    for ai in values:
        spec = _spec(ai)
        for pattern in spec.excludes:
            other = _present(pattern, values, ai)
            if other is not None:
                raise _pairing(f"({ai}) must not appear together with ({other})", ai, spec, other)
    for ai, data in elements:
        if values[ai] != data:
            raise _pairing(f"({ai}) appears twice with different values", ai, _spec(ai), f"({ai})")
    if "8030" in values:
        # A digital signature needs a serialised key: these keys' serial part is optional.
        for ai in ("253", "255", "8003"):
            if ai in values and len(values[ai]) == _spec(ai).min_length:
                raise _pairing(
                    f"(8030) signs ({ai}) without its serial part", ai, _spec(ai), "(8030)"
                )
    return values


def _present(pattern: str, values: dict[str, str], itself: str) -> str | None:
    """The AI in `values` matching `pattern` (`310n`: any digit for n), other than `itself`."""
    if "n" not in pattern:
        return pattern if pattern in values and pattern != itself else None
    prefix = pattern.rstrip("n")
    for ai in values:
        if len(ai) == len(pattern) and ai.startswith(prefix) and ai != itself:
            return ai
    return None


def _pairing(detail: str, ai: str, spec: AiSpec, other: str) -> CodeError:
    return CodeError(
        "gs1_structure",
        detail,
        kind="sscc" if ai == "00" else "gs1",
        variant="ai_pairing",
        where=f"AI ({ai}) {spec.title} / {other}",
    )


def _element_string(elements: list[Element]) -> str:
    """The canonical element string: GS after every field without a pre-defined length."""
    parts: list[str] = []
    for index, (ai, data) in enumerate(elements):
        parts.append(ai + data)
        if index + 1 < len(elements) and not _spec(ai).fixed:
            parts.append(GS)
    return "".join(parts)


def _expiry(value: str) -> str:
    """The `(17)` date as ISO `YYYY-MM-DD`, day 00 resolved (biip: century and month end)."""
    from biip import ParseError  # noqa: PLC0415 - see _from_digital_link
    from biip.gs1_element_strings import GS1ElementString  # noqa: PLC0415

    try:
        date = GS1ElementString.parse("17" + value).date
    except ParseError:
        date = None
    if date is None:  # the linters let only real dates through; this is a second guard
        raise CodeError("bad_date", f"(17) {value!r} is not a date", kind="gs1", where="AI (17)")
    return date.isoformat()


def _refuse_swallowed(values: dict[str, str], text: str, fields: dict[str, FieldValue]) -> None:
    """Refuse when, GS having been lost, a variable field may have swallowed a later one."""
    for ai in _VARIABLE_READ:
        value = values.get(ai)
        if value is None:
            continue
        for other, pattern in _EMBEDDED.items():
            if other != ai and other not in values and pattern.search(value):
                raise CodeError(
                    "gs1_structure",
                    f"no GS separator in {text!r}: ({ai}) {value!r} may contain a "
                    f"({other}) field; refusing rather than guessing",
                    kind="gs1",
                    fields=fields,
                    variant="separator_lost",
                    where=f"AI ({ai})",
                )
