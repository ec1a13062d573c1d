"""Benchmarks: run on purpose (`make bench`), each printing ratios against a same-run baseline."""
