"""TLS for MQTT clients: server verification, TLS >= 1.2, mutual TLS with a client certificate."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any


class TrackedContext(ssl.SSLContext):
    """An SSLContext that remembers the last socket it wrapped, so a failed handshake's socket
    (which paho does not close) can be closed."""

    last: ssl.SSLSocket | None = None

    def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        """Wrap as usual, and keep a reference."""
        self.last = super().wrap_socket(*args, **kwargs)
        return self.last


def client_context(
    ca_file: Path | None, cert_file: Path | None, key_file: Path | None
) -> TrackedContext:
    """Server verification against `ca_file` (system CAs without it), TLS >= 1.2, mTLS.

    Build one per connection, so a renewed certificate is picked up at the next reconnect.
    """
    ctx = TrackedContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies the chain and the host name
    if ca_file:
        ctx.load_verify_locations(cafile=str(ca_file))
    else:
        ctx.load_default_certs()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert_file and key_file:
        ctx.load_cert_chain(str(cert_file), str(key_file))
    return ctx
