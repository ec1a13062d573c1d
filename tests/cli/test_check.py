"""`tracescan check`: SPEC's one-JSON-line-per-input contract and exit statuses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

CHECK_KEYS = {"input", "accepted", "kind", "level", "reason", "message", "fields"}


def _check(*args: str, stdin: str | None = None) -> tuple[int, list[dict[str, object]]]:
    r = subprocess.run(
        [sys.executable, "-m", "agent", "check", *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=30,
    )
    return r.returncode, [json.loads(line) for line in r.stdout.splitlines()]


def test_accepted_cn20_prints_fields_and_exits_0() -> None:
    rc, out = _check("81234560000000011234")
    assert rc == 0
    assert set(out[0]) == CHECK_KEYS
    assert out[0]["accepted"] is True
    assert out[0]["kind"] == "cn20"
    assert out[0]["reason"] is None
    assert out[0]["fields"] == {"product_code": "8123456", "serial": "000000001"}


def test_special_control_flag() -> None:
    _, out = _check("89123450000000011234")
    fields = out[0]["fields"]
    assert isinstance(fields, dict)
    assert fields["special_control"] is True


def test_any_refusal_exits_1_and_keeps_input_order() -> None:
    rc, out = _check("81234560000000011234", "", "1234", "71234560000000011234")
    assert rc == 1
    assert [o["input"] for o in out] == ["81234560000000011234", "", "1234", "71234560000000011234"]
    assert [o["accepted"] for o in out] == [True, False, False, False]
    assert out[1]["reason"] == "empty"
    assert (
        out[3]["reason"] == "unknown_format"
    )  # 20 digits not starting with 8: not silently accepted
    assert all(o["message"] for o in out)


def test_stdin_dash_reads_one_input_per_line() -> None:
    rc, out = _check("-", stdin="81234560000000011234\r\n]C081234560000000021234\n")
    assert rc == 0
    assert [o["fields"] for o in out][1] == {"product_code": "8123456", "serial": "000000002"}


def test_case_code_at_dispense_is_level_not_allowed(catalog_file: Path) -> None:
    rc, out = _check("--catalog", str(catalog_file), "81234580000000011234", "81234560000000011234")
    assert rc == 1
    assert out[0]["level"] == "case"
    assert out[0]["reason"] == "level_not_allowed"
    assert out[1]["level"] == "unit"
    rc, out = _check("--op", "receive", "--catalog", str(catalog_file), "81234580000000011234")
    assert rc == 0
    assert out[0]["level"] == "case"


def test_usage_error_exits_2() -> None:
    rc, _ = _check("--op", "nonsense", "81234560000000011234")
    assert rc == 2


def test_english_messages() -> None:
    _, out = _check("--lang", "en", "")
    assert out[0]["message"] == "Nothing was read: scan again"


def test_gs1_with_a_typed_gs_escape_and_hri() -> None:
    rc, out = _check(
        "--op", "receive", "0106901234567892172812311012345\\x1d21ABC", "(00)157035381410375177"
    )
    assert rc == 0
    assert (out[0]["kind"], out[0]["level"]) == ("gs1", "unknown")
    assert out[0]["fields"] == {
        "gtin": "06901234567892",
        "expiry": "2028-12-31",
        "batch": "12345",
        "serial": "ABC",
    }
    assert (out[1]["kind"], out[1]["level"], out[1]["fields"]) == (
        "sscc",
        "pallet",
        {"sscc": "157035381410375177"},
    )


def test_refusals_name_the_family_and_say_why_in_english() -> None:
    rc, out = _check(
        "--lang",
        "en",
        "6901234567892",
        "00157035381410375177",
        "0106901234567892",
        "010690123456789217281231101234521ABC",
    )
    assert rc == 1
    assert [(o["kind"], o["reason"]) for o in out] == [
        ("commodity", "commodity_barcode"),
        ("sscc", "level_not_allowed"),
        ("gs1", "gs1_structure"),
        ("gs1", "gs1_structure"),
    ]
    messages = [str(o["message"]) for o in out]
    assert "69" in messages[0]
    assert "追溯码" in messages[0]
    assert "serial" in messages[2]
    assert "GS" in messages[3]


def test_check_loads_no_transport_driver_or_image_library() -> None:
    heavy = ("paho", "serial", "cv2", "evdev", "PIL", "barcode", "zxingcpp", "agent.daemon")
    probe = (
        "import sys; from agent.cli import main; rc = main(['check', '81234560000000011234']); "
        f"print(rc, sorted(m for m in {heavy!r} if m in sys.modules))"
    )
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=30)
    assert r.stdout.splitlines()[-1] == "0 []", r.stderr
