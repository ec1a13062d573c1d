"""Recognition agrees with test material nobody on this project wrote, when it is there.

`../shared/conformance/` (GS1 Barcode Syntax Engine and zint vectors) lies beside the
repository on developers' machines and in CI; `bench/conformance.py` prints the full table.
"""

from __future__ import annotations

import pytest

from bench import conformance

pytestmark = pytest.mark.skipif(
    not (conformance.SHARED / "gs1_vectors.jsonl").is_file(),
    reason=f"no conformance material at {conformance.SHARED}",
)


def test_pack_codes_agree_with_the_sources_verdict() -> None:
    result = conformance.gs1_agreement()
    agree, count = result.total
    assert count > 1000
    assert agree / count >= 0.995, "\n".join(result.disagreements[:20])


def test_check_digit_and_date_faults_carry_that_reason() -> None:
    result = conformance.gs1_agreement()
    assert result.reasons[1] > 100
    assert result.wrong_reasons == []
