"""The outbox relay's cycle per batch (issue #17, pipeline latency): while it holds the lease it reads its
position from memory, not the store, and on PostgreSQL records it without waiting for the disk (a lost position
only republishes); it reads the store's head for the lag metric only after a full batch. A real PostgreSQL, a
real RabbitMQ, the relay in this process (shared/tests/test_relay_wake.py's helpers)."""

from __future__ import annotations

import time

from shared.tests.test_relay_wake import Relay, commit
from shared.tests.test_relay_wake import open_store as open_store  # noqa: F401 - the fixture


def counting(recorder, *names: str) -> dict[str, int]:
    calls = dict.fromkeys(names, 0)
    for name in names:
        original = getattr(recorder, name)

        def counted(*args, _name=name, _original=original, **kwargs):
            calls[_name] += 1
            return _original(*args, **kwargs)

        setattr(recorder, name, counted)
    return calls


def test_a_relay_holding_the_lease_keeps_its_position_and_records_it_unsynced(open_store, rabbitmq):  # noqa: F811
    app, config, broker = open_store("postgres")
    recorder = app.process_recorder
    with Relay(app, rabbitmq.amqp_uri, config, safety_poll=5.0) as relay:
        first, _ = commit(app)
        broker.arrival(first)
        time.sleep(0.3)
        calls = counting(recorder, "max_tracking_id", "max_notification_id", "insert_tracking",
                         "insert_tracking_unsynced")
        reads_before = relay.reads
        for _ in range(5):
            user, _ = commit(app)
            broker.arrival(user)
            time.sleep(0.1)
        cycles = relay.reads - reads_before
    assert cycles >= 5
    assert calls["max_tracking_id"] == 0, calls        # the position it recorded, not a read per batch
    assert calls["max_notification_id"] == 0, calls    # batches short of full: it read up to the head
    assert calls["insert_tracking"] == 0 and calls["insert_tracking_unsynced"] == 5, calls
    head = recorder.max_notification_id()
    assert recorder.max_tracking_id("outbox:identity") == head  # recorded, visible to every connection


def test_a_relay_started_again_continues_from_the_recorded_position(open_store, rabbitmq):  # noqa: F811
    app, config, broker = open_store("postgres")
    users = []
    with Relay(app, rabbitmq.amqp_uri, config, safety_poll=5.0):
        for _ in range(3):
            user, _ = commit(app)
            broker.arrival(user)
            users.append(user)
    later, _ = commit(app)
    with Relay(app, rabbitmq.amqp_uri, config, safety_poll=5.0):
        broker.arrival(later)
        time.sleep(0.3)
    method, _, body = broker.channel.basic_get(broker.queue, auto_ack=True)
    assert method is None, f"published again: {body!r}"  # nothing before its recorded position went out twice
