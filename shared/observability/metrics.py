"""Prometheus metrics shared by every process (names: sfera_<what>_<unit>)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

rpc_duration = Histogram(
    "sfera_rpc_duration_seconds",
    "Time spent handling an entrypoint call (RPC or event) in a service.",
    ["service", "entrypoint", "outcome"],
    buckets=LATENCY_BUCKETS,
)
events_published = Counter(
    "sfera_events_published_total", "Integration events published with a broker confirm.", ["service", "type"]
)
outbox_lag = Gauge(
    "sfera_outbox_lag_notifications", "Notifications recorded but not yet published by the relay.", ["service"]
)
outbox_position = Gauge("sfera_outbox_position", "Last notification id the relay has published.", ["service"])
command_retries = Counter(
    "sfera_command_retries_total",
    "Commands run again from the start after a concurrent save won the race (retried), or refused after the last "
    "attempt (busy: 429 request.busy).",
    ["service", "outcome"],
)
relay_lease_held = Gauge(
    "sfera_relay_lease_held", "1 while this relay holds its service's lease (it publishes), 0 on standby.", ["service"]
)
events_consumed = Counter(
    "sfera_events_consumed_total",
    "Integration events handled by a consumer, by outcome (applied, duplicate, retried, dead_lettered).",
    ["service", "type", "outcome"],
)
store_group_saves = Histogram(
    "sfera_store_group_saves",
    "Processed events (process_once saves of concurrent consumer workers) written per transaction "
    "(shared/store/group.py).",
    ["service"],
    buckets=(1, 2, 5, 10, 20, 50, 100),
)
store_group_reads = Histogram(
    "sfera_store_group_reads",
    "Aggregates' reads of concurrent workers answered per statement (shared/store/group.py, EventGroupRead).",
    ["service"],
    buckets=(1, 2, 5, 10, 20, 50, 100),
)
consumer_acks = Histogram(
    "sfera_consumer_acks",
    "Deliveries acknowledged per basic.ack sent by a service's queue consumer (shared/bus/delivery.py).",
    ["service"],
    buckets=(1, 2, 5, 10, 20, 50, 100),
)
store_group_failures = Counter(
    "sfera_store_group_failures_total",
    "Shared transactions of several processed events that failed; each of their saves was written again alone.",
    ["service"],
)
http_duration = Histogram(
    "sfera_http_request_duration_seconds",
    "Gateway HTTP request latency.",
    ["method", "route", "status"],
    buckets=LATENCY_BUCKETS,
)
websocket_connections = Gauge("sfera_websocket_connections", "Open WebSocket connections on this gateway process.")
events_pushed = Counter("sfera_realtime_events_pushed_total", "Events pushed to WebSocket clients.", ["type"])
sfu_nodes_live = Gauge("sfera_sfu_nodes_live", "SFU nodes this calls process hears heartbeats from (issue #17).")
sfu_nodes_lost = Counter("sfera_sfu_nodes_lost_total", "SFU nodes this calls process found dead (silent for "
                         "SFERA_SFU_NODE_TIMEOUT) or started again: their calls' participants were marked gone.")

# Label values that come from a request are bounded: a client cannot add series.
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def method_label(method: str) -> str:
    """The request's method as a label: a standard one, or "other"."""
    return method if method in HTTP_METHODS else "other"


def status_label(status: int) -> str:
    return str(status) if 100 <= status <= 599 else "other"
