"""The trace-code block printed on the customer's receipt (医保结算: no code, no settlement)."""

from __future__ import annotations


def receipt_text(doc: str, codes: list[str], lang: str = "zh") -> str:
    """The receipt block for the codes recorded under `doc`.

    >>> print(receipt_text("RX-1", ["81234560000000011234"], "en"))
    Drug trace codes (RX-1)
      81234560000000011234
    """
    title = "药品追溯码" if lang == "zh" else "Drug trace codes"
    return "\n".join([f"{title} ({doc})", *(f"  {c}" for c in codes)])
