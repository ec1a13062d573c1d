"""`python -m bench [NAME ...]`: run every `bench/bench_*.py` (or the named ones) in turn.

Each module exposes `main() -> int`; it measures the project's path and a raw baseline in the
same run and prints the ratio. Results worth keeping are copied into `bench/RESULTS.md`.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import bench


def main(argv: list[str]) -> int:
    """Run the selected benchmarks; non-zero if any failed to run."""
    names = sorted(
        m.name for m in pkgutil.iter_modules(bench.__path__) if m.name.startswith("bench_")
    )
    wanted = [n if n.startswith("bench_") else f"bench_{n}" for n in argv] or names
    status = 0
    for name in wanted:
        if name not in names:
            print(f"no benchmark {name!r}; have: {', '.join(names)}", file=sys.stderr)
            return 2
        print(f"\n### {name}", flush=True)
        status |= importlib.import_module(f"bench.{name}").main()
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
