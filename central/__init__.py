"""The central ledger: verifies, stores and acknowledges the devices' event streams
(`tracescan-central`); PostgreSQL is its single source of truth."""
