"""Uplink, central broker and fault tests: real mosquitto, real TLS, a real fault proxy."""
