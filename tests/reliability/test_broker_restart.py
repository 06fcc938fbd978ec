"""RabbitMQ restarts while events are being produced: nothing is lost, nothing
is applied twice."""

import threading
import time

import pytest

from tests.helpers import eventually

pytestmark = pytest.mark.reliability

EVENTS = 150


def test_broker_restart_while_producing_loses_nothing(pipeline_own_broker):
    pipeline = pipeline_own_broker
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
    started = time.monotonic()
    broker.start()
    restart_took = time.monotonic() - started
    producer.join(timeout=120)
    assert done.is_set()
    assert 0 < restarted_at < EVENTS, "the restart happened while events were being produced"

    def outcome() -> dict:
        tallies = pipeline.tallies(users)
        return {"applied once": tallies.count(1), "missing": tallies.count(0),
                "doubled": sum(1 for t in tallies if t > 1), "broker restart took s": round(restart_took, 1),
                "relay position": pipeline.relay_position, "dead": [m.name for m in pipeline.stack.dead_processes()]}

    try:
        eventually(lambda: pipeline.tallies(users) == [1] * EVENTS, timeout=90,
                   what="every event applied exactly once after the restart")
    except AssertionError as timed_out:
        raise AssertionError(f"{timed_out}: {outcome()}") from None
    pipeline.stack.wait_healthy(["ledger", "identity-relay"], timeout=30)
