"""Consumer lag as the service itself sees it (issue #18), exported by its /metrics beside RabbitMQ's own:

- ``sfera_consumer_queue_ready_messages{service, queue}``: events waiting in each of the service's consumer
  queues, read from the broker (a passive declare) when Prometheus scrapes, at most once a second; every
  replica reports the same number (take ``max by (queue)``). A broker that does not answer leaves the gauge
  out of that scrape (the broker's own alerts say why) rather than report 0.
- ``sfera_consumer_event_lag_seconds{service, queue}``: from an event's time (when its aggregate saved it) to
  when this consumer applied it — the whole path through outbox, relay, broker, retries; observed by the
  consumer (shared/bus/consumer.py) for each event it applies.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pika
import pika.exceptions
from prometheus_client import Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

from shared.clock import utcnow
from shared.observability.logging import get_logger

log = get_logger("shared.bus.lag")

LAG_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
READY = "sfera_consumer_queue_ready_messages"

event_lag = Histogram(
    "sfera_consumer_event_lag_seconds",
    "From an event's time (its aggregate saved it) to its consumer applying it, per consumer queue.",
    ["service", "queue"],
    buckets=LAG_BUCKETS,
)


def observe_applied(service: str, queue: str, event_time: datetime) -> None:
    if event_time.tzinfo is None:
        event_time = event_time.replace(tzinfo=UTC)
    event_lag.labels(service, queue).observe(max(0.0, (utcnow() - event_time).total_seconds()))


class QueueDepths(Collector):
    """Messages ready in ``queues``, asked of the broker at scrape time (cached ``max_age`` seconds), over one
    connection kept open between scrapes."""

    def __init__(self, service: str, queues: list[str], amqp_uri: str, max_age: float = 1.0):
        self.service, self.queues, self.amqp_uri, self.max_age = service, sorted(queues), amqp_uri, max_age
        self._lock = threading.Lock()
        self._connection: pika.BlockingConnection | None = None
        self._read_at = 0.0
        self._ready: dict[str, int] = {}

    def describe(self):
        return [GaugeMetricFamily(READY, "Events waiting in a consumer queue.", labels=["service", "queue"])]

    def depths(self) -> dict[str, int]:
        with self._lock:
            if time.monotonic() - self._read_at >= self.max_age:
                try:
                    self._ready = self._read()
                except (pika.exceptions.AMQPError, OSError) as exc:
                    log.warning("could not read the consumer queues' depths", extra={"error": repr(exc)})
                    self._drop()
                    self._ready = {}
                self._read_at = time.monotonic()
            return dict(self._ready)

    def _read(self) -> dict[str, int]:
        if self._connection is None or not self._connection.is_open:
            params = pika.URLParameters(self.amqp_uri)
            params.socket_timeout = params.blocked_connection_timeout = 2
            self._connection = pika.BlockingConnection(params)
        ready = {}
        channel = self._connection.channel()
        try:
            for queue in self.queues:
                try:
                    ready[queue] = channel.queue_declare(queue, passive=True).method.message_count
                except pika.exceptions.ChannelClosedByBroker:  # not declared (yet): nothing waits in it
                    channel = self._connection.channel()
        finally:
            if channel.is_open:
                channel.close()
        return ready

    def _drop(self) -> None:
        try:
            if self._connection is not None and self._connection.is_open:
                self._connection.close()
        except Exception:  # noqa: BLE001 - a connection already broken
            pass
        self._connection = None

    def collect(self):
        family = GaugeMetricFamily(READY, "Events waiting in a consumer queue.", labels=["service", "queue"])
        for queue, ready in self.depths().items():
            family.add_metric([self.service, queue], ready)
        yield family


def export_queue_depths(service: str, queues: list[str], amqp_uri: str) -> QueueDepths | None:
    """Registers the depths of a service's consumer queues with the process's /metrics (none to report: no-op)."""
    if not queues:
        return None
    collector = QueueDepths(service, queues, amqp_uri)
    REGISTRY.register(collector)
    return collector
