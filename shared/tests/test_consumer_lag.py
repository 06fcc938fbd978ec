"""Consumer lag from the service's own /metrics (issue #18): the depth of each of its consumer queues read from
the real broker when scraped, and nothing (not a false 0) while the broker does not answer; the age of an event
when applied."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pika
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from shared.bus import lag
from shared.bus.topology import declare, platform_bindings
from tests.helpers import eventually
from tests.reliability.conftest import LEDGER_QUEUE, LEDGER_SERVICE

_vhosts = itertools.count()


def scrape(collector) -> str:
    registry = CollectorRegistry()
    registry.register(collector)
    return generate_latest(registry).decode()


def test_the_depth_of_each_consumer_queue_is_read_from_the_broker_when_scraped(rabbitmq):
    vhost = f"lag{next(_vhosts)}"
    rabbitmq.add_vhost(vhost)
    uri = f"{rabbitmq.amqp_uri.rstrip('/')}/{vhost}"
    declare(uri, platform_bindings([LEDGER_SERVICE]))
    collector = lag.QueueDepths("ledger", [LEDGER_QUEUE, "evt-never-declared--ledger.x"], uri, max_age=0)
    series = f'sfera_consumer_queue_ready_messages{{queue="{LEDGER_QUEUE}",service="ledger"}}'
    assert f"{series} 0.0" in scrape(collector)
    connection = pika.BlockingConnection(pika.URLParameters(uri))
    channel = connection.channel()
    channel.confirm_delivery()  # each publish returns once the (quorum) queue has it
    for _ in range(3):
        channel.basic_publish("", LEDGER_QUEUE, b"{}", pika.BasicProperties(delivery_mode=2))
    connection.close()
    # A quorum queue's count in declare-ok follows its log a moment after the confirm: read until it shows.
    def counted() -> str | None:
        text = scrape(collector)
        return text if f"{series} 3.0" in text else None

    text = eventually(counted, timeout=10, what="the three messages counted")
    assert "evt-never-declared" not in text  # a queue that does not exist is no series

    rabbitmq.ctl("delete_vhost", vhost)  # the broker no longer answers for it: no series rather than 0
    assert "sfera_consumer_queue_ready_messages{" not in scrape(collector)


@pytest.mark.unit
def test_an_applied_event_is_observed_with_its_age():
    before = lag.event_lag.labels("svc", "q")._sum.get()
    lag.observe_applied("svc", "q", datetime.now(UTC) - timedelta(seconds=2))
    lag.observe_applied("svc", "q", datetime.now() + timedelta(hours=5))  # naive: UTC; from the future: 0
    assert 2.0 <= lag.event_lag.labels("svc", "q")._sum.get() - before < 3.0
