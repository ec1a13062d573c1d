"""Virtual hardware for tests, benchmarks and `make demo`: scanners, broker faults, workloads."""
