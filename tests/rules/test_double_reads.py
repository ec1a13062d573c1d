"""agent/rules/double_reads.py: repeats inside the window are absorbed; memory stays bounded."""

from __future__ import annotations

from agent.rules.double_reads import DoubleReadFilter


def test_double_reads_inside_a_burst_larger_than_the_sweep_size() -> None:
    reads = DoubleReadFilter(window=1.5)
    codes = [f"code-{i}" for i in range(6000)]
    assert not any(reads.repeat("s1", c, 100.0) for c in codes)
    assert all(reads.repeat("s1", c, 100.5) for c in codes[:10])
    # Long after the window, a sweep drops everything older: memory stays bounded.
    for i, c in enumerate(codes):
        reads.repeat("s2", c, 200.0 + i * 0.001)
    assert not reads.repeat("s1", codes[0], 210.0)
    assert len(reads._last) < 6000
