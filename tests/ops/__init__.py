"""Running it for real: systemd, local API, worker feedback, status."""
