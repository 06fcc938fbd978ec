"""Declares what must exist in RabbitMQ before any event is published: every
service's event exchange and every consumer's queue with its binding. Run by
``make run`` and the tests before the relays start, so that an event published
before its consumer first starts still has a queue to wait in.

``python -m shared.bus.topology``
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import pika

from shared.bus.consumer import ReliableEventHandler
from shared.bus.naming import consumer_queue, dead_letter_queue, event_exchange
from shared.config import settings
from shared.platform import SERVICES, load


@dataclass(frozen=True)
class Binding:
    exchange: str
    routing_key: str
    queue: str

    @property
    def dead_letter_queue(self) -> str:
        return dead_letter_queue(self.queue)


def consumer_bindings(service_cls: type) -> list[Binding]:
    """The queues nameko will consume from for ``service_cls``'s event handlers."""
    bindings = []
    for attr in sorted(dir(service_cls)):
        method = getattr(service_cls, attr, None)
        for entrypoint in getattr(method, "nameko_entrypoints", ()):
            if isinstance(entrypoint, ReliableEventHandler):
                bindings.append(
                    Binding(
                        exchange=event_exchange(entrypoint.source_service),
                        routing_key=entrypoint.event_type,
                        queue=consumer_queue(entrypoint.source_service, entrypoint.event_type, service_cls.name, attr),
                    )
                )
    return bindings


def platform_bindings(service_paths: list[str] | None = None) -> list[Binding]:
    paths = service_paths if service_paths is not None else [e.service for e in SERVICES.values()]
    return [b for path in paths for b in consumer_bindings(load(path))]


def declare(amqp_uri: str, bindings: list[Binding], publishers: list[str] | None = None) -> None:
    exchanges = {event_exchange(s) for s in (publishers if publishers is not None else SERVICES)}
    exchanges |= {b.exchange for b in bindings}
    connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
    try:
        channel = connection.channel()
        for name in sorted(exchanges):
            channel.exchange_declare(exchange=name, exchange_type="topic", durable=True)
        for b in bindings:
            channel.queue_declare(queue=b.queue, durable=True)
            channel.queue_bind(queue=b.queue, exchange=b.exchange, routing_key=b.routing_key)
            channel.queue_declare(queue=b.dead_letter_queue, durable=True)
    finally:
        connection.close()


def main(argv: list[str]) -> int:
    bindings = platform_bindings(argv or None)
    declare(settings().amqp_uri, bindings)
    for b in bindings:
        print(f"{b.exchange} --{b.routing_key}--> {b.queue}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
