"""RabbitMQ restarts while events are being produced: nothing is lost, nothing
is applied twice."""

import threading
import time

import pytest

from tests.helpers import eventually

pytestmark = pytest.mark.reliability

EVENTS = 150


def test_broker_restart_while_producing_loses_nothing(pipeline):
    pipeline.start_ledger()
    pipeline.start_relay()
    users: list = []
    done = threading.Event()

    def produce():
        for i in range(EVENTS):
            users.extend(pipeline.register(1, start=i))
            time.sleep(0.02)
        done.set()

    producer = threading.Thread(target=produce)
    producer.start()
    eventually(lambda: len(users) >= EVENTS // 4, what="production under way")
    broker = pipeline.stack.rabbitmq
    broker.stop()
    restarted_at = len(users)
    time.sleep(1.0)
    broker.start()
    producer.join(timeout=120)
    assert done.is_set()
    assert 0 < restarted_at < EVENTS, "the restart happened while events were being produced"

    eventually(lambda: pipeline.tallies(users) == [1] * EVENTS, timeout=90,
               what="every event applied exactly once after the restart")
    pipeline.stack.wait_healthy(["ledger", "identity-relay"], timeout=30)
