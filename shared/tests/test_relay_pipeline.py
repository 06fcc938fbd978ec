"""The outbox relay reads and publishes the next batch while the broker has not yet confirmed the one before
(issue #17, the paced pipeline's latency): an event committed while RabbitMQ writes the previous batch to its disk
no longer waits for that confirm and the position's write. The position still moves only past batches confirmed,
oldest first: a batch refused or a connection lost publishes again everything after the recorded position (at
least once, nothing lost). ``in_flight=1`` is the old way (each batch confirmed and recorded before the next read),
bench.pipeline's baseline. A real PostgreSQL, a real RabbitMQ, the relay in this process; the broker's confirms are
held back (or turned into a nack) between it and the publisher."""

from __future__ import annotations

import itertools
import threading
import time

import pytest
from pika.frame import Method
from pika.spec import Basic

from shared.bus.trace import TRACE_FILE, read_trace
from shared.tests.test_relay_wake import Relay, commit
from shared.tests.test_relay_wake import open_store as open_store  # noqa: F401 - the fixture


class HeldConfirms:
    """Keeps the broker's confirms from the relay's publisher until ``release``."""

    def __init__(self, relay: Relay):
        self.loop = relay.loop
        self.publisher = relay.relay.publisher
        self.original = self.publisher._on_confirm
        self.frames: list = []
        self.holding = True
        self.publisher._on_confirm = self.on_confirm  # what connect() hands the channel

    def on_confirm(self, frame) -> None:
        if self.holding:
            self.frames.append(frame)
        else:
            self.original(frame)

    def in_loop(self, fn) -> None:
        done = threading.Event()

        def run() -> None:
            try:
                fn()
            finally:
                done.set()

        self.loop.call_soon_threadsafe(run)
        assert done.wait(5)

    def release(self, nack_first: bool = False) -> None:
        def go() -> None:
            self.holding = False
            frames, self.frames = self.frames, []
            for i, frame in enumerate(frames):
                if nack_first and i == 0:
                    frame = Method(frame.channel_number, Basic.Nack(delivery_tag=frame.method.delivery_tag))
                self.original(frame)

        self.in_loop(go)

    def held(self) -> int:
        return len(self.frames)


def recorded(app) -> int:
    return app.process_recorder.max_tracking_id("outbox:identity") or 0


def wait_until(predicate, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_batch_is_published_while_the_one_before_waits_for_its_confirm(open_store, rabbitmq):  # noqa: F811
    app, config, broker = open_store("postgres")
    relay = Relay(app, rabbitmq.amqp_uri, config, safety_poll=5.0)
    confirms = HeldConfirms(relay)
    with relay:
        first, _ = commit(app)
        broker.arrival(first)
        second, _ = commit(app)
        broker.arrival(second, timeout=5)  # the first's confirm is still held back
        wait_until(lambda: confirms.held() == 2)  # its confirm may reach the relay after the message its queue
        assert recorded(app) == 0          # nothing confirmed: the position has not moved
        confirms.release()
        wait_until(lambda: recorded(app) == app.process_recorder.max_notification_id())


def test_with_one_batch_in_flight_the_next_waits_for_the_confirm_as_before(open_store, rabbitmq):  # noqa: F811
    app, config, broker = open_store("postgres")
    relay = Relay(app, rabbitmq.amqp_uri, config, safety_poll=5.0, in_flight=1)
    confirms = HeldConfirms(relay)
    with relay:
        first, _ = commit(app)
        broker.arrival(first)
        second, _ = commit(app)
        with pytest.raises(AssertionError, match="not published"):
            broker.arrival(second, timeout=1.0)
        confirms.release()
        broker.arrival(second)
        wait_until(lambda: recorded(app) == app.process_recorder.max_notification_id())


def test_a_nacked_batch_is_published_again_with_every_batch_after_it(open_store, rabbitmq):  # noqa: F811
    app, config, broker = open_store("postgres")
    relay = Relay(app, rabbitmq.amqp_uri, config, safety_poll=5.0)
    confirms = HeldConfirms(relay)
    with relay:
        users = []
        for _ in range(3):
            user, _ = commit(app)
            broker.arrival(user)
            users.append(user)
        wait_until(lambda: confirms.held() == 3)  # a confirm may reach the relay after the message its queue
        confirms.release(nack_first=True)  # the first refused, the two after it confirmed
        for user in users:                 # the position did not move past the first: all three again
            broker.arrival(user)
        wait_until(lambda: recorded(app) == app.process_recorder.max_notification_id())


def test_a_connection_lost_with_batches_unconfirmed_publishes_them_again(open_store, rabbitmq):  # noqa: F811
    app, config, broker = open_store("postgres")
    relay = Relay(app, rabbitmq.amqp_uri, config, safety_poll=5.0)
    confirms = HeldConfirms(relay)
    with relay:
        users = []
        for _ in range(2):
            user, _ = commit(app)
            broker.arrival(user)
            users.append(user)

        def lose_connection() -> None:
            confirms.holding, confirms.frames = False, []  # the old channel's confirms are gone with it
            confirms.publisher.connection.close()

        confirms.in_loop(lose_connection)
        for user in users:
            broker.arrival(user)
        later, _ = commit(app)
        broker.arrival(later)
        wait_until(lambda: recorded(app) == app.process_recorder.max_notification_id())


def test_with_a_trace_file_the_relay_writes_each_events_stages_in_order(open_store, rabbitmq, tmp_path,  # noqa: F811
                                                                          monkeypatch):
    trace = tmp_path / "trace.txt"
    monkeypatch.setenv(TRACE_FILE, str(trace))  # bench.pipeline --stages reads it
    app, config, broker = open_store("postgres")
    with Relay(app, rabbitmq.amqp_uri, config, safety_poll=5.0):
        user, _ = commit(app)
        broker.arrival(user)
        time.sleep(0.3)                    # commit -> notified -> read -> published; one more to be listening
        user, _ = commit(app)
        broker.arrival(user)
        head = app.process_recorder.max_notification_id()
        wait_until(lambda: recorded(app) == head)
    stages = read_trace(str(trace))
    key = str(head)
    order = ["relay_notified", "relay_reading", "relay_selected", "relay_mapped", "relay_confirmed", "relay_recorded"]
    times = [stages[stage][key] for stage in order]
    assert times == sorted(times), dict(zip(order, times, strict=True))


def test_a_new_event_is_read_and_published_before_the_position_of_earlier_confirms_is_written(  # noqa: F811
        open_store, rabbitmq):
    """Woken by a commit while the broker's confirms of the batches before have come in, the relay reads and
    publishes the new event first and writes the position after it (bench.pipeline --stages: the position's round
    trip sat between 'relay notified' and 'select starts', in the new event's latency)."""
    app, config, broker = open_store("postgres")
    relay = Relay(app, rabbitmq.amqp_uri, config, safety_poll=5.0)
    confirms = HeldConfirms(relay)
    calls: list[tuple[str, int]] = []
    select = app.process_recorder.select_notifications  # the Relay helper's counting one
    record_position = relay.relay.record_position

    def selected(*args, **kwargs):
        notifications = select(*args, **kwargs)
        calls.append(("select", notifications[-1].id if notifications else 0))
        return notifications

    def recording(last: int) -> None:
        calls.append(("position", last))
        record_position(last)

    app.process_recorder.select_notifications = selected
    relay.relay.record_position = recording
    with relay:
        first, _ = commit(app)
        broker.arrival(first)
        wait_until(lambda: confirms.held() == 1)
        first_id = app.process_recorder.max_notification_id()
        second: list[str] = []

        def commit_and_confirm() -> None:  # in the relay's loop: both are there when it next runs
            second.append(commit(app)[0])
            relay.relay.listener.notified.set()  # its NOTIFY, whenever the listening task reads it
            confirms.holding = False
            frames, confirms.frames = confirms.frames, []
            for frame in frames:
                confirms.original(frame)

        confirms.in_loop(commit_and_confirm)
        broker.arrival(second[0])
        second_id = app.process_recorder.max_notification_id()
        wait_until(lambda: recorded(app) == second_id)
    read_second = calls.index(("select", second_id))
    position_of_first = calls.index(("position", first_id)) if ("position", first_id) in calls else len(calls)
    assert read_second < position_of_first, calls


def test_a_busy_relay_writes_its_position_at_most_once_an_interval_and_at_the_head_once_idle(  # noqa: F811
        open_store, rabbitmq):
    """Under a burst the relay's position was written after nearly every confirm (bench.pipeline --bursts: 0.2-0.4
    writes an event, each a round trip and a commit of PostgreSQL's); it is a saving, not a guarantee (a lost one
    republishes what consumers find processed), so it is written at most once a ``position_interval`` while the
    relay is busy, and once that has passed with nothing more to publish, at the last confirmed event."""
    app, config, broker = open_store("postgres")
    relay = Relay(app, rabbitmq.amqp_uri, config, safety_poll=5.0, position_interval=0.25)
    writes: list[tuple[float, int]] = []
    record_position = relay.relay.record_position

    def recording(last: int) -> None:
        writes.append((time.monotonic(), last))
        record_position(last)

    relay.relay.record_position = recording
    with relay:
        first, _ = commit(app)
        broker.arrival(first)
        wait_until(lambda: recorded(app) == app.process_recorder.max_notification_id())
        started, users = time.monotonic(), []
        while time.monotonic() - started < 1.0:  # one commit every ~10 ms, each published on its own
            users.append(commit(app)[0])
            time.sleep(0.01)
        for user in users:
            broker.arrival(user)
        head = app.process_recorder.max_notification_id()
        wait_until(lambda: recorded(app) == head, timeout=2)
    during = [at for at, _ in writes if at >= started]
    assert len(users) >= 40 and relay.reads >= 20, (len(users), relay.reads)  # a busy relay: many reads
    assert len(during) <= 1.0 / 0.25 + 2, len(during)  # was one a confirm: about one a read
    assert all(b - a >= 0.24 for a, b in itertools.pairwise(during)), during
    assert writes[-1][1] == head
