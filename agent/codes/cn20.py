"""The 20-digit Chinese drug traceability code (药品追溯码, 码上放心).

Layout: 7-digit product identification code (药品标识码) + 9-digit serial + 4 check digits.
The national platform issues the check digits; their algorithm is not public, so **they are
not verified here**. Locally we check length, digits and the leading 8; a deployment that
obtains a verification key or algorithm plugs it in with `set_check_verifier`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from agent.codes.model import Code, CodeError, FieldValue

LENGTH: Final = 20

#: Optional platform check-digit verifier: returns True when the 4 check digits are right.
CheckVerifier = Callable[[str], bool]
_verifier: CheckVerifier | None = None


def set_check_verifier(verifier: CheckVerifier | None) -> None:
    """Install (or remove with None) a verifier for the platform-issued check digits."""
    global _verifier  # noqa: PLW0603 - one process-wide hook, set at start-up
    _verifier = verifier


def _verified(verifier: CheckVerifier, text: str) -> bool:
    """Run a deployment's verifier; one that fails counts as "not verified" (fail closed).

    A bad input must never crash the daemon, and a verifier installed for security must not
    be bypassed by its own bug.
    """
    try:
        return verifier(text)
    except Exception:  # any fault in plug-in code is a failed check
        return False


def looks_like(text: str) -> bool:
    """True for any 20-digit numeric string: the classifier's first test (before GS1)."""
    return len(text) == LENGTH and text.isascii() and text.isdigit()


@dataclass(frozen=True, slots=True)
class TraceCode:
    """A structurally valid 20-digit trace code."""

    text: str

    @property
    def product_code(self) -> str:
        """The 7-digit product identification code; it also fixes the packaging level."""
        return self.text[:7]

    @property
    def serial(self) -> str:
        """The 9-digit serial part."""
        return self.text[7:16]

    @property
    def special_control(self) -> bool:
        """Codes starting 89 belong to special-control drugs (特药)."""
        return self.text.startswith("89")

    @classmethod
    def parse(cls, text: str) -> TraceCode:
        """Validate `text` as a trace code or raise `CodeError`.

        >>> TraceCode.parse("81234560000000011234").product_code
        '8123456'
        """
        if len(text) != LENGTH:
            raise CodeError(
                "bad_length",
                f"trace code {text!r} has {len(text)} digits, expected 20",
                kind="cn20",
            )
        if not (text.isascii() and text.isdigit()):
            raise CodeError("bad_charset", f"trace code {text!r} must be digits only", kind="cn20")
        if text[0] != "8":
            # Enterprise-defined or foreign 20-digit numbers: the platform filters these out.
            raise CodeError(
                "unknown_format",
                f"20-digit code {text!r} does not start with 8: not a national trace code",
                kind="cn20",
            )
        if _verifier is not None and not _verified(_verifier, text):
            raise CodeError(
                "bad_check_digit", f"trace code {text!r} fails the platform check", kind="cn20"
            )
        return cls(text)

    def to_code(self, symbology: str | None = None) -> Code:
        """The family-independent `Code` with SPEC.md's fields."""
        fields: dict[str, FieldValue] = {"product_code": self.product_code, "serial": self.serial}
        if self.special_control:
            fields["special_control"] = True
        return Code(text=self.text, kind="cn20", fields=fields, symbology=symbology)
