"""Fuzz the stateless recogniser + judge with ≥1M inputs: zero exceptions allowed.

Not part of the test suite (it takes about a minute) and not a `bench_*` module, so
`python -m bench` does not run it; run it on purpose:

    python -m bench.fuzz_codes [COUNT] [SEED]

Inputs mix mutations of valid codes of every family (digits changed, characters dropped,
doubled or inserted, separators and AIM prefixes added, removed or mangled, codes spliced),
random bytes (as latin-1 text), random unicode and random digit runs. Every input goes through
`agent.policy.assess`, the path the daemon takes, and the result is checked: a decision always,
`accepted` exactly when there is no reason, a SPEC reason otherwise, messages in both
languages, and accepted codes whose fields are self-consistent.
"""

from __future__ import annotations

import datetime as dt
import random
import sys
import time
from collections import Counter
from collections.abc import Callable

from agent.codes import GS
from agent.codes.gs1 import check_digit_ok
from agent.rules.catalog import Catalog
from agent.rules.decision import Decision, assess
from agent.rules.reasons import STATELESS_REASONS

SEEDS = (
    "81234560000000011234",
    "89123450000000011234",
    "]C081234560000000011234",
    "]d20106901234567892172812311012345\x1d21ABC",
    "0106901234567892172812001012345<GS>21ABC",
    "(01)06901234567892(17)280100(10)L1(21)S1",
    "]C100157035381410375177",
    "(00)157035381410375177",
    "6901234567892",
    "96385074",
    "036000291452",
    "MA.156.M0.100761.21234561.Sx00008.M220117.L20220117.E280130.V220117.C3",
    "80040000000000011234",
)
PIECES: tuple[str, ...] = (GS, "<GS>", "{GS}", "^]", "\\x1d", "]C1", "]d2", "]E0", "(", ")")
PIECES += ("01", "21", "10", "17", "00", ".S", ".E", "MA.", "\r", "\n", " ", "\x00", "\u241d")
PIECES += ("码", "８")


def _mutate(rng: random.Random, text: str) -> str:
    for _ in range(rng.randint(1, 3)):
        i = rng.randint(0, len(text))
        op = rng.randrange(7)
        if op == 0 and text:  # change one character
            text = text[:i] + rng.choice("0123456789AZ") + text[i + 1 :]
        elif op == 1:  # drop a character
            text = text[:i] + text[i + 1 :]
        elif op == 2:  # insert a separator, prefix or odd character
            text = text[:i] + rng.choice(PIECES) + text[i:]
        elif op == 3:  # double a stretch (a scanner firing twice)
            text = text[:i] + text[i : i + rng.randint(1, 8)] + text[i:]
        elif op == 4:  # truncate (partial read)
            text = text[:i]
        elif op == 5:  # splice two codes
            other = rng.choice(SEEDS)
            text = text[:i] + other[rng.randint(0, len(other)) :]
        else:  # lose every separator (a keyboard wedge)
            text = text.replace(GS, "").replace("<GS>", "")
    return text


def _inputs(rng: random.Random) -> Callable[[], str]:
    def one() -> str:
        kind = rng.random()
        if kind < 0.6:
            return _mutate(rng, rng.choice(SEEDS))
        if kind < 0.75:
            return rng.randbytes(rng.randint(0, 40)).decode("latin-1")
        if kind < 0.85:
            return "".join(chr(rng.randint(0, 0x10FFFF)) for _ in range(rng.randint(0, 20)))
        if kind < 0.99:
            return "".join(rng.choices("0123456789", k=rng.randint(0, 30)))
        return rng.choice(SEEDS) * rng.randint(50, 5000)  # over-long lines

    return one


def _problem(d: Decision) -> str | None:
    """What is wrong with a decision, or None when it keeps every invariant."""
    if d.accepted != (d.reason is None):
        return "accepted disagrees with reason"
    if not d.accepted and d.reason not in STATELESS_REASONS:
        return f"reason {d.reason!r} is not a SPEC reason"
    if not (d.message("zh") and d.message("en")):
        return "missing message"
    if not d.accepted:
        return None
    f = d.fields
    if d.kind == "cn20" and not (len(d.text) == 20 and d.text.startswith("8")):
        return "accepted cn20 is not 20 digits starting 8"
    if d.kind == "gs1" and not (
        isinstance(f.get("gtin"), str) and check_digit_ok(str(f["gtin"])) and f.get("serial")
    ):
        return "accepted gs1 without a valid GTIN and a serial"
    if d.kind == "sscc" and not check_digit_ok(str(f.get("sscc"))):
        return "accepted sscc with a bad check digit"
    if d.kind in ("commodity", "unknown"):
        return f"accepted kind {d.kind}"
    if "expiry" in f:
        dt.date.fromisoformat(str(f["expiry"]))
    return None


def main(argv: list[str] | None = None) -> int:
    """Run the fuzz; print counts per reason and any failure; non-zero on any failure."""
    args = sys.argv[1:] if argv is None else argv
    count = int(args[0]) if args else 1_000_000
    seed = int(args[1]) if len(args) > 1 else 20261123
    rng = random.Random(seed)
    next_input = _inputs(rng)
    catalog = Catalog()
    today = dt.date(2026, 11, 23)
    reasons: Counter[str] = Counter()
    failures: list[tuple[str, str]] = []
    start = time.perf_counter()
    for _ in range(count):
        raw = next_input()
        try:
            decision = assess(raw, op="dispense", catalog=catalog, today=today)
            problem = _problem(decision)
        except Exception as exc:  # the point is to catch anything at all
            problem = f"{type(exc).__name__}: {exc}"
            decision = None
        if problem is not None:
            failures.append((raw[:120], problem))
        elif decision is not None:
            reasons[decision.reason or "accepted"] += 1
    elapsed = time.perf_counter() - start
    print(f"fuzz: {count:,} inputs, seed {seed}, {elapsed:.1f} s ({count / elapsed:,.0f}/s)")
    for reason, n in reasons.most_common():
        print(f"  {reason:<20} {n:>9,}")
    print(f"failures (exceptions or broken invariants): {len(failures)}")
    for raw, problem in failures[:20]:
        print(f"  {problem}: {raw!r}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
