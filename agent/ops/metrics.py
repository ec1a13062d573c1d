"""Prometheus text endpoint on localhost (`[api] prometheus_port`): the `status` figures as gauges.

A custom collector computes the figures at scrape time from the store (own read connection)
and the running daemon, so nothing is counted twice and nothing is kept in sync by hand.
Bound to 127.0.0.1 only: a site collector (node-exporter textfile, a local Prometheus agent)
scrapes it; it is not meant to be exposed on the shop network.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from agent.ops.status import knows_central

log = logging.getLogger(__name__)

UNSENT_DOC = (
    "records not yet done: the broker's PUBACK, or the central ledger's ack when one is set"
)


class StatusCollector(Collector):
    """Turns one `status` dict (see `agent.status.Status.as_dict`) into gauges per scrape."""

    def __init__(self, figures: Callable[[], dict[str, Any]]) -> None:
        self.figures = figures

    def collect(self) -> Iterator[Metric]:
        """The gauges for this scrape."""
        st = self.figures()
        online = st.get("online")
        yield _gauge("tracescan_online", "1 when the uplink is connected", 1.0 if online else 0.0)
        yield _gauge("tracescan_unsent_records", UNSENT_DOC, st["unsent"])
        yield _gauge(
            "tracescan_oldest_unsent_seconds",
            "age of the oldest unsent record",
            st.get("oldest_unsent_age") or 0.0,
        )
        yield _gauge(
            "tracescan_overdue_events",
            "accepted events unsent past the upload deadline (working days)",
            st["overdue"],
        )
        per_op = {
            "accepted": "accepted scans in the status window",
            "refused": "refused scans in the status window",
            "uploaded": "accepted scans acknowledged by the broker",
            "scan_rate": "accepted / (accepted + refused)",
            "upload_rate": "uploaded / accepted",
            "confirmed": "accepted scans acknowledged by the central ledger",
            "confirm_rate": "confirmed / accepted",
        }
        for key, doc in per_op.items():
            fam = GaugeMetricFamily(f"tracescan_{key}", doc, labels=["op"])
            for op, figs in sorted(st["operations"].items()):
                if figs.get(key) is not None:
                    fam.add_metric([op], float(figs[key]))
            yield fam
        if knows_central(st):
            yield _gauge(
                "tracescan_awaiting_confirmation",
                "records the broker took that the central ledger has not acknowledged",
                st.get("awaiting_confirmation", 0),
            )
            yield _gauge(
                "tracescan_confirmed_through",
                "the device sequence number the central ledger confirmed everything up to",
                st.get("confirmed_through") or 0,
            )
        fam = GaugeMetricFamily(
            "tracescan_refused_by_reason",
            "refused scans in the window by reason",
            labels=["reason"],
        )
        for reason, n in sorted(st["refused_by_reason"].items()):
            fam.add_metric([reason], float(n))
        yield fam
        yield from _scanner_metrics(st.get("scanners") or [], st["now"])


def _scanner_metrics(scanners: list[dict[str, Any]], now: float) -> Iterator[Metric]:
    """Per scanner (label `source`): is its device there and read, when it last scanned."""
    gauges = {
        "open": GaugeMetricFamily(
            "tracescan_scanner_open",
            "1 while the scanner's device is open and read",
            labels=["source"],
        ),
        "present": GaugeMetricFamily(
            "tracescan_scanner_present",
            "1 when the device was found at the last attempt",
            labels=["source"],
        ),
        "absent": GaugeMetricFamily(
            "tracescan_scanner_absent_seconds",
            "how long the device has not been open (0 while it is)",
            labels=["source"],
        ),
        "last_scan": GaugeMetricFamily(
            "tracescan_scanner_last_scan_timestamp_seconds",
            "when the scanner last delivered a scan (Unix time; absent before the first)",
            labels=["source"],
        ),
    }
    failures = CounterMetricFamily(
        "tracescan_scanner_failures",
        "open attempts and reading sessions that failed",
        labels=["source"],
    )
    for s in scanners:
        label = [s["source"]]
        gauges["open"].add_metric(label, 1.0 if s["open"] else 0.0)
        gauges["present"].add_metric(label, 1.0 if s["present"] else 0.0)
        since = s["absent_since"]
        gauges["absent"].add_metric(label, max(0.0, now - since) if since else 0.0)
        if s["last_scan"] is not None:
            gauges["last_scan"].add_metric(label, float(s["last_scan"]))
        failures.add_metric(label, float(s["failures"]))
    yield from gauges.values()
    yield failures


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=float(value))


class MetricsEndpoint:
    """The HTTP server thread serving `/metrics` on 127.0.0.1."""

    def __init__(self, port: int, figures: Callable[[], dict[str, Any]]) -> None:
        self.port = port
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(StatusCollector(figures))
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> bool:
        """Listen; False (logged) when the port cannot be bound."""
        from prometheus_client import start_http_server  # noqa: PLC0415 - only when configured

        try:
            self._server, self._thread = start_http_server(
                self.port, addr="127.0.0.1", registry=self.registry
            )
        except OSError as exc:
            log.error("metrics: cannot listen on 127.0.0.1:%d (%s); disabled", self.port, exc)
            return False
        log.info("metrics: Prometheus text on http://127.0.0.1:%d/metrics", self.port)
        return True

    def close(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join(2.0)
            self._server = None
