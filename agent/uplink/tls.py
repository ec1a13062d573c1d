"""TLS for MQTT clients: server verification, TLS >= 1.2, mutual TLS with a client certificate."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any, Final


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


# OpenSSL's certificate verification codes (X509_V_ERR_*) that an operator can act on.
_UNKNOWN_ISSUER: Final = frozenset({2, 18, 19, 20, 21})
_EXPIRED: Final = 10
_NOT_YET_VALID: Final = 9
_NAME_MISMATCH: Final = frozenset({62, 64})  # host name, IP address
#: OpenSSL reasons that mean the other side does not speak TLS at all.
_NOT_TLS: Final = ("WRONG_VERSION_NUMBER", "UNEXPECTED_EOF", "EOF OCCURRED", "RECORD_LAYER_FAILURE")


def failure_cause(
    error: BaseException | str, *, host: str, port: int, client_cert: bool
) -> str | None:
    """The likely cause of a failed TLS connection, in the operator's words, naming the setting
    to check; None when the error says nothing recognisable.

    `error` is the exception from the handshake, or the text paho logged when the broker's
    alert arrived after it (TLS 1.3 sends a refusal of the client certificate only then).
    `client_cert`: whether this device presented one.
    """
    text = str(error)
    upper = text.upper()
    code = getattr(error, "verify_code", None)
    if code in _UNKNOWN_ISSUER or "LOCAL ISSUER" in upper or "SELF-SIGNED" in upper:
        return (
            "the broker's certificate is not signed by the CA in mqtt.ca_file (unknown issuer): "
            "give the CA that issued the broker's certificate"
        )
    if code in _NAME_MISMATCH or "MISMATCH" in upper:
        return (
            f"the broker's certificate is not for {host} (certificate name mismatch): set "
            "mqtt.host to a name in the certificate, or reissue it with this name "
            f"(tracescan pki broker {host})"
        )
    if code == _EXPIRED or "CERTIFICATE HAS EXPIRED" in upper:
        return (
            "the broker's certificate has expired (or this device's clock is wrong): renew it "
            "on the broker, or set the clock"
        )
    if code == _NOT_YET_VALID or "NOT YET VALID" in upper:
        return "the broker's certificate is not valid yet: this device's clock is probably wrong"
    if "CERTIFICATE_REQUIRED" in upper or ("HANDSHAKE_FAILURE" in upper and not client_cert):
        return (
            "the broker requires a client certificate: set mqtt.cert_file and mqtt.key_file "
            "(tracescan pki device)"
        )
    if "ALERT_CERTIFICATE_EXPIRED" in upper:
        return (
            "the broker refused this device's client certificate: it has expired (mqtt.cert_file)"
        )
    if "ALERT" in upper and client_cert:
        return (
            "the broker refused this device's client certificate (mqtt.cert_file): issued by a CA "
            "the broker does not trust, expired or revoked"
        )
    if any(reason in upper for reason in _NOT_TLS) or isinstance(
        error, (ConnectionResetError, ssl.SSLEOFError)
    ):
        return (
            f"port {port} does not speak TLS (a plain MQTT port?): set mqtt.port to the "
            "broker's TLS port (usually 8883), or remove mqtt.ca_file for plain MQTT"
        )
    return None
