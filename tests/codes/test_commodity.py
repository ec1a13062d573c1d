"""agent/codes/commodity.py: EAN/UPC product barcodes are recognised and always refused."""

from __future__ import annotations

import pytest

from agent.codes import CodeError, recognise
from agent.rules.reasons import message


def _refusal(raw: str) -> CodeError:
    with pytest.raises(CodeError) as info:
        recognise(raw)
    return info.value


def test_china_ean13_gets_the_69_message() -> None:
    error = _refusal("6901234567892")
    assert (error.reason, error.kind, error.variant) == ("commodity_barcode", "commodity", "69")
    assert error.fields == {"gtin": "06901234567892"}
    assert "追溯码" in message(error.reason, "zh", error.variant)
    assert "69" in message(error.reason, "en", error.variant)


@pytest.mark.parametrize(
    "text",
    [
        "4006381333931",  # EAN-13, Germany
        "96385074",  # EAN-8
        "036000291452",  # UPC-A
        "16901234567899",  # bare GTIN-14 (ITF-14 on a carton)
        "]E04006381333931",
    ],
)
def test_other_product_barcodes_are_commodity_without_the_69_variant(text: str) -> None:
    error = _refusal(text)
    assert (error.reason, error.kind, error.variant) == ("commodity_barcode", "commodity", None)
    assert error.fields["gtin"] == text.removeprefix("]E0").zfill(14)


@pytest.mark.parametrize("text", ["6901234567893", "]E04006381333932", "]E496385075"])
def test_wrong_check_digit_when_it_is_clearly_an_ean(text: str) -> None:
    error = _refusal(text)
    assert (error.reason, error.kind) == ("bad_check_digit", "commodity")


def test_a_short_digit_run_with_a_wrong_check_is_not_claimed_as_ean() -> None:
    assert _refusal("12345678").reason == "unknown_format"
