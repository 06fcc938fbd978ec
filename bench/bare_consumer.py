"""An experiment of ``bench.pipeline --stages`` (issue #17's paced row): the ledger's consumer with nothing of
nameko, eventlet or kombu, to measure what the delivery's frameworks cost the paced latency before replacing them.

One process, one thread: pika's BlockingConnection consumes the ledger's queue (prefetch 10), parses each
delivery's CloudEvent, applies it with the ledger's own ``count`` (``process_once``: the effect and the event id in
one transaction) and acks it after the commit. It has none of the consumer's retries and dead letters (a failure
stops it): it is a floor to compare with, not a runtime. Selected by the variant's ``SFERA_BENCH_CONSUMER=bare``:

    python -m bench.pipeline --stages --rate 450 --variant 'nameko:' --variant 'bare:SFERA_BENCH_CONSUMER=bare'
"""

from __future__ import annotations

import contextlib
import os
import signal
import time

import pika

from shared.bus.naming import consumer_queue
from shared.bus.trace import stage_trace
from shared.config import settings
from shared.contracts import get_contract, parse_event
from shared.observability.http import Readiness, serve
from shared.observability.profiling import profiled
from shared.store import make_application
from tests.fixtures.ledger import LedgerApplication

EVENT_TYPE = "identity.UserRegistered.v1"


def stop(*_: object) -> None:
    raise KeyboardInterrupt  # out of the loop through the profile's ``finally`` (the stack stops it with SIGTERM)


def main() -> None:
    signal.signal(signal.SIGTERM, stop)
    config = settings()
    contract = get_contract(EVENT_TYPE)
    queue = consumer_queue(contract.service, contract.routing_key, "ledger", "on_user_registered")
    app = make_application(LedgerApplication, "ledger", config=config)
    trace = stage_trace()
    readiness = Readiness()
    serve("ledger-bare", int(os.environ["SFERA_METRICS_PORT"]), {}, readiness)
    connection = pika.BlockingConnection(pika.URLParameters(config.amqp_uri))
    channel = connection.channel()
    channel.basic_qos(prefetch_count=10)
    readiness.ready()
    with profiled("ledger"), contextlib.suppress(KeyboardInterrupt):
        for method, _properties, body in channel.consume(queue, inactivity_timeout=1):
            if method is None:
                continue
            delivered = time.time()
            event = parse_event(body)
            if trace:
                trace.record("consumer_delivered", [event.id], delivered)
            app.count(event)
            if trace:
                trace.record("consumer_handled", [event.id])
            channel.basic_ack(method.delivery_tag)


if __name__ == "__main__":
    main()
