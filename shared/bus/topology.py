"""Declares what must exist in RabbitMQ before any event is published: every
service's event exchange and every consumer's queue with its binding. Run by
``make run`` and the tests before the relays start, so that an event published
before its consumer first starts still has a queue to wait in.

``python -m shared.bus.topology``                        declare them
``python -m shared.bus.topology --definitions [--write]``  the same as deploy/rabbitmq/definitions.json
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass

import pika

from shared.bus.consumer import ReliableEventHandler
from shared.bus.naming import consumer_queue, dead_letter_queue, event_exchange
from shared.bus.queues import durable_arguments, ensure_queue
from shared.config import REPO_ROOT, settings
from shared.platform import SERVICES, load


@dataclass(frozen=True)
class Binding:
    exchange: str
    routing_key: str
    queue: str
    retries: tuple[tuple[str, tuple], ...] = ()  # the handler's retry queues: name, arguments' items

    @property
    def dead_letter_queue(self) -> str:
        return dead_letter_queue(self.queue)

    def queues(self) -> list[tuple[str, dict]]:
        """Every queue of this consumer with its arguments (shared.bus.queues): its own, its retry queues, its
        dead letters."""
        own = durable_arguments()
        return [(self.queue, own), *((name, dict(items)) for name, items in self.retries),
                (self.dead_letter_queue, own)]


def consumer_bindings(service_cls: type) -> list[Binding]:
    """The queues nameko will consume from for ``service_cls``'s event handlers."""
    bindings = []
    for attr in sorted(dir(service_cls)):
        method = getattr(service_cls, attr, None)
        for entrypoint in getattr(method, "nameko_entrypoints", ()):
            if isinstance(entrypoint, ReliableEventHandler):
                queue = consumer_queue(entrypoint.source_service, entrypoint.event_type, service_cls.name, attr)
                bindings.append(
                    Binding(
                        exchange=event_exchange(entrypoint.source_service),
                        routing_key=entrypoint.event_type,
                        queue=queue,
                        retries=tuple((name, tuple(arguments.items()))
                                      for name, arguments in entrypoint.retry_queues(queue)),
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
            for name, arguments in b.queues():
                channel = ensure_queue(connection, channel, name, arguments)
            channel.queue_bind(queue=b.queue, exchange=b.exchange, routing_key=b.routing_key)
    finally:
        connection.close()


DEFINITIONS = REPO_ROOT / "deploy" / "rabbitmq" / "definitions.json"


def definitions(bindings: list[Binding], publishers: list[str] | None = None) -> str:
    """What ``declare`` makes, as RabbitMQ's definitions file (deploy/rabbitmq/definitions.json, imported by a
    broker at boot or with ``rabbitmqctl import_definitions``): one object a line."""
    exchanges = sorted({event_exchange(s) for s in (publishers if publishers is not None else SERVICES)}
                       | {b.exchange for b in bindings})
    sections = {
        "exchanges": [{"name": name, "vhost": "/", "type": "topic", "durable": True, "auto_delete": False,
                       "internal": False, "arguments": {}} for name in exchanges],
        "queues": [{"name": name, "vhost": "/", "durable": True, "auto_delete": False, "arguments": arguments}
                   for b in bindings for name, arguments in b.queues()],
        "bindings": [{"source": b.exchange, "vhost": "/", "destination": b.queue, "destination_type": "queue",
                      "routing_key": b.routing_key, "arguments": {}} for b in bindings],
    }
    return "{\n" + ",\n".join(
        f'  "{key}": [\n' + ",\n".join(f"    {json.dumps(item)}" for item in items) + "\n  ]"
        for key, items in sections.items()) + "\n}\n"


def main(argv: list[str]) -> int:
    if argv[:1] == ["--definitions"]:
        text = definitions(platform_bindings())
        if argv[1:] == ["--write"]:
            DEFINITIONS.write_text(text)
        else:
            sys.stdout.write(text)
        return 0
    bindings = platform_bindings(argv or None)
    declare(settings().amqp_uri, bindings)
    for b in bindings:
        print(f"{b.exchange} --{b.routing_key}--> {b.queue}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
