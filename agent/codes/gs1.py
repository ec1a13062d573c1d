"""GS1 element strings (GS1 DataMatrix, GS1-128, GS1 QR) and the SSCC, parsed with biip.

biip owns the GS1 tables (application identifiers, their formats, check digits, dates); this
module only decides what a trace scan needs from them: a GTIN `(01)` with a valid check digit
and a serial `(21)` for a saleable pack, or an SSCC `(00)` for a logistic unit.

A GS1 message is tried only when the input says it is one (DOMAIN.md): a GS1 symbology
identifier, a GS character, parenthesised HRI `(01)…`, or a leading `01`/`00` followed by
digits. Plain 20-digit `8…` numerics never reach this module: biip would read them as AI
8004/8020 element strings.

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

from biip import ParseConfig, ParseError
from biip.checksums import gs1_standard_check_digit
from biip.gs1_application_identifiers import GS1ApplicationIdentifier
from biip.gs1_element_strings import GS1ElementString
from biip.gs1_messages import GS1Message
from biip.symbology import GS1Symbology, SymbologyIdentifier

from agent.codes.model import Code, CodeError, FieldValue
from agent.codes.normalise import GS, Normalised

_CONFIG: Final = ParseConfig(separator_chars=(GS,))

#: AIs whose value is a YYMMDD date: a parse failure there is `bad_date`, not a structure error.
_DATE_AIS: Final = frozenset({"11", "12", "13", "15", "16", "17"})

#: For each field we read that can swallow others: what another field looks like inside it.
#: The leading `.` requires at least one character of the swallowing field itself.
_EMBEDDED: Final[dict[str, re.Pattern[str]]] = {
    "10": re.compile(r".10."),
    "21": re.compile(r".21."),
    # Only a plausible YYMMDD counts, so fewer serials that merely contain 17 are refused.
    "17": re.compile(r".17\d\d(?:0[1-9]|1[0-2])(?:[0-2]\d|3[01])"),
}
_VARIABLE_READ: Final = ("10", "21")

_HRI_ELEMENT: Final = re.compile(r"\((\d{2,4})\)([^(]+)")


def check_digit_ok(digits: str) -> bool:
    """Mod-10 check digit of a GTIN-8/12/13/14 or SSCC (biip's implementation).

    >>> check_digit_ok("06901234567892"), check_digit_ok("06901234567893")
    (True, False)
    """
    return (
        len(digits) > 1
        and digits.isascii()
        and digits.isdigit()
        and gs1_standard_check_digit(digits[:-1]) == int(digits[-1])
    )


@functools.lru_cache(maxsize=64)
def is_gs1_symbology(symbology: str) -> bool:
    """True when an AIM symbology identifier announces GS1 data (`]C1`, `]d2`, `]Q3`, `]e0`…)."""
    try:
        gs1 = SymbologyIdentifier.extract(symbology).gs1_symbology
    except ParseError:
        return False
    return gs1 is not None and gs1 in GS1Symbology.with_gs1_messages()


def looks_like(n: Normalised) -> bool:
    """Whether the classifier should try GS1 on this input at all (see the module docstring)."""
    text = n.text
    if GS in text or text.startswith("("):
        return True
    if n.symbology is not None and is_gs1_symbology(n.symbology):
        return True
    if text.startswith("01"):
        return len(text) >= 16 and text[2:16].isdigit()
    if text.startswith("00"):
        return len(text) >= 20 and text[2:20].isdigit()
    return False


def parse(n: Normalised) -> Code:
    """Parse a GS1 message into a `gs1` or `sscc` Code, or raise `CodeError`.

    >>> code = parse(Normalised("0106901234567892172512001012345" + GS + "21ABC"))
    >>> code.kind, code.fields["expiry"], code.fields["serial"]
    ('gs1', '2025-12-31', 'ABC')
    """
    text = n.text
    hri = text.startswith("(")
    element_text = _from_hri(text) if hri else text
    try:
        message = GS1Message.parse(element_text, config=_CONFIG)
    except ParseError:
        raise _diagnose(element_text) from None
    elements: dict[str, GS1ElementString] = {}
    for element in message.element_strings:
        if element.ai.ai in elements:
            raise CodeError(
                "gs1_structure", f"AI ({element.ai.ai}) appears twice in {text!r}", kind="gs1"
            )
        elements[element.ai.ai] = element
    canonical = GS1Message.from_element_strings(message.element_strings).value

    sscc = elements.get("00")
    if sscc is not None:
        if sscc.sscc is None:
            raise CodeError(
                "bad_check_digit",
                f"SSCC {sscc.value} has a wrong check digit",
                kind="sscc",
                fields={"sscc": sscc.value},
            )
        return Code(
            text=canonical,
            kind="sscc",
            fields={"sscc": sscc.value},
            level="pallet",
            symbology=n.symbology,
        )

    gtin = elements.get("01")
    if gtin is None:
        raise CodeError(
            "gs1_structure", f"GS1 message {text!r} has no GTIN (01) and no SSCC (00)", kind="gs1"
        )
    fields: dict[str, FieldValue] = {"gtin": gtin.value}
    if gtin.gtin is None:
        raise CodeError(
            "bad_check_digit",
            f"GTIN {gtin.value} has a wrong check digit",
            kind="gs1",
            fields=fields,
        )
    batch = elements.get("10")
    if batch is not None:
        fields["batch"] = batch.value
    expiry = elements.get("17")
    if expiry is not None and expiry.date is not None:
        fields["expiry"] = expiry.date.isoformat()
    if not hri and GS not in text:
        _refuse_swallowed(elements, text, fields)
    serial = elements.get("21")
    if serial is None:
        raise CodeError(
            "gs1_structure",
            f"GS1 message {text!r} has no serial (21): it names a product, not a pack",
            kind="gs1",
            fields=fields,
            variant="no_serial",
        )
    fields["serial"] = serial.value
    return Code(text=canonical, kind="gs1", fields=fields, symbology=n.symbology)


def _from_hri(text: str) -> str:
    """Turn HRI `(01)…(21)…` into an element string with GS after every element.

    biip accepts a GS between any two elements, so the parentheses' structure is kept exactly
    and the element string goes through the same parse (and diagnosis) as scanned data.
    """
    hri = "".join(text.split())
    parts: list[str] = []
    end = 0
    for match in _HRI_ELEMENT.finditer(hri):
        if match.start() != end:
            break
        parts.append(match.group(1) + match.group(2))
        end = match.end()
    if not parts or end != len(hri):
        raise CodeError(
            "gs1_structure", f"{text[:60]!r} is not well-formed HRI '(AI)data(AI)data'", kind="gs1"
        )
    return GS.join(parts)


def _refuse_swallowed(
    elements: dict[str, GS1ElementString], text: str, fields: dict[str, FieldValue]
) -> None:
    """Refuse when, GS having been lost, a variable field may have swallowed a later one."""
    for ai in _VARIABLE_READ:
        element = elements.get(ai)
        if element is None:
            continue
        for other, pattern in _EMBEDDED.items():
            if other != ai and other not in elements and pattern.search(element.value):
                raise CodeError(
                    "gs1_structure",
                    f"no GS separator in {text!r}: ({ai}) {element.value!r} may contain a "
                    f"({other}) field; refusing rather than guessing",
                    kind="gs1",
                    fields=fields,
                    variant="separator_lost",
                )


def _diagnose(text: str) -> CodeError:
    """Walk the element strings one by one to say which one biip refused, and why."""
    rest = text
    while rest:
        try:
            ai = GS1ApplicationIdentifier.extract(rest)
        except ParseError:
            return CodeError(
                "gs1_structure", f"no GS1 application identifier at {rest[:24]!r}", kind="gs1"
            )
        try:
            element = GS1ElementString.extract(rest, config=_CONFIG)
        except ParseError:
            if ai.ai in _DATE_AIS:
                return CodeError(
                    "bad_date", f"({ai.ai}) {rest[len(ai.ai) :][:6]!r} is not a date", kind="gs1"
                )
            return CodeError(
                "gs1_structure",
                f"({ai.ai}) value {rest[len(ai.ai) :][:24]!r} does not fit format {ai.format}",
                kind="gs1",
            )
        rest = rest[len(element) :].lstrip(GS)
    return CodeError("gs1_structure", f"{text[:60]!r} is not a GS1 message", kind="gs1")
