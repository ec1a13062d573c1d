"""README's key tables agree with the schema: every key documented, with its real default.

A row documents keys when its first cell holds only key names: `device.id`, `[[scanner]] type`
or `[status] holidays`. Its default cell is the schema's rendering (`required`, `none`,
`empty`, `` `zh` ``, 9600, …), optionally followed by a note in parentheses; one default per
key when a row names several keys and its cell lists as many defaults, else one for all.
"""

from __future__ import annotations

import re
from pathlib import Path

from agent.config import Config
from agent.config.schema import reference

README = Path(__file__).resolve().parents[2] / "README.md"
_KEY = re.compile(r"(?:\[\[(\w+)\]\] |\[(\w+)\] |(\w+)\.)(\w+)")
_NOTE = re.compile(r" \([^()]*\)$")


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split(" | ")]


def _split_outside_backticks(text: str) -> list[str]:
    """`a`, 1 → [`a`, 1]; a ", " inside backticks (`["a", "b"]`) does not split."""
    return re.split(r", (?=(?:[^`]*`[^`]*`)*[^`]*$)", text)


def documented() -> dict[str, list[str]]:
    """Key → the default cells README gives it (a key may appear in more than one table)."""
    found: dict[str, list[str]] = {}
    for line in README.read_text(encoding="utf-8").splitlines():
        if not line.startswith("| `"):
            continue
        cells = _cells(line)
        if len(cells) < 3:
            continue
        names = re.findall(r"`([^`]*)`", cells[0])
        matches = [_KEY.fullmatch(n) for n in names]
        if not matches or not all(matches) or re.sub(r"`[^`]*`|,| ", "", cells[0]):
            continue
        keys = [f"{m[1] or m[2] or m[3]}.{m[4]}" for m in matches if m]
        default = _NOTE.sub("", cells[1])
        defaults = _split_outside_backticks(default) if len(keys) > 1 else [default]
        if len(defaults) != len(keys):
            defaults = [default] * len(keys)
        for key, value in zip(keys, defaults, strict=True):
            found.setdefault(key, []).append(value)
    return found


def test_the_readme_key_tables_are_found() -> None:
    docs = documented()
    assert docs["device.id"] == ["required"]
    assert docs["mqtt.host"] == ["`127.0.0.1`"]
    assert docs["mqtt.port"] == ["1883"]
    assert docs["scanner.end_keys"] == ['`["enter", "kp_enter", "tab"]`']


def test_every_key_is_in_the_readme_with_its_default() -> None:
    docs = documented()
    missing = [r.markdown() for r in reference(Config) if r.key not in docs]
    assert not missing, "README lacks these keys; rows to start from:\n" + "\n".join(missing)
    wrong = {
        r.key: (r.default, docs[r.key])
        for r in reference(Config)
        if any(d != r.default for d in docs[r.key])
    }
    assert not wrong, f"README's defaults differ from the schema (schema, README): {wrong}"


def test_the_readme_documents_no_key_that_does_not_exist() -> None:
    keys = {r.key for r in reference(Config)}
    assert not set(documented()) - keys
