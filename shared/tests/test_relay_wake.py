"""The outbox relay wakes on new events (issue #17) instead of polling its store every
20 ms: on PostgreSQL a commit's NOTIFY wakes it (its safety poll here is 5 s, so only the
notification can explain a fast publish); on SQLite it backs off while idle and polls
fast again on activity. A real store, a real RabbitMQ, the relay in this process."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
import uuid

import pika
import pytest
from eventsourcing.domain import Aggregate, event

from shared.bus.relay import OutboxRelay
from shared.clock import utcnow
from shared.config import settings
from shared.lease import Lease
from shared.store import ServiceApplication, make_application

_databases = itertools.count(1)


class Note(Aggregate):
    @event("Written")
    def __init__(self, text: str):
        self.text = text


class NotesApplication(ServiceApplication):
    name = "notes"


def as_registered(domain_event) -> list:
    """Each note becomes a UserRegistered (any published contract will do: the test reads the broker)."""
    return [("identity.UserRegistered.v1", {"user_id": domain_event.originator_id, "registered_via": "phone",
                                            "registered_at": utcnow()}, None)]


class Relay:
    """The relay running in a thread of its own (its own event loop), counting its store reads."""

    def __init__(self, app: ServiceApplication, amqp_uri: str, config, **options):
        self.relay = OutboxRelay("identity", app, as_registered, amqp_uri, lease=Lease("outbox:identity", config),
                                 **options)
        self.reads = 0
        select = app.process_recorder.select_notifications

        def counted(*args, **kwargs):
            self.reads += 1
            return select(*args, **kwargs)

        app.process_recorder.select_notifications = counted
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self.relay.run(),), daemon=True)

    def __enter__(self) -> Relay:
        self.thread.start()
        return self

    def __exit__(self, *_) -> None:
        self.loop.call_soon_threadsafe(self.relay.stopping.set)
        self.thread.join(10)
        assert not self.thread.is_alive()


class Broker:
    """A queue bound to identity's UserRegistered; ``arrival(user_id)`` waits for one and tells when it came."""

    def __init__(self, amqp_uri: str):
        self.connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
        self.channel = self.connection.channel()
        self.channel.exchange_declare("identity.events", "topic", durable=True)
        self.queue = self.channel.queue_declare("", exclusive=True).method.queue
        self.channel.queue_bind(self.queue, "identity.events", "UserRegistered.v1")

    def arrival(self, user_id: str, timeout: float = 10) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            method, _, body = self.channel.basic_get(self.queue, auto_ack=True)
            if method is None:
                time.sleep(0.002)
            elif user_id.encode() in body:
                return time.monotonic()
        raise AssertionError(f"{user_id} was not published within {timeout} s")


@pytest.fixture
def open_store(request, tmp_path, rabbitmq):
    """``open_store(kind)``: a fresh store of that kind for the relay, and a queue on its exchange."""
    opened = []

    def open_(kind: str):
        env = {"SFERA_VAR_DIR": str(tmp_path / "var"), "PERSISTENCE": kind}
        if kind == "postgres":
            server = request.getfixturevalue("postgres")
            database = f"wake{next(_databases)}_{uuid.uuid4().hex[:6]}"
            server.ensure_database(database)
            env.update(SFERA_PG_PORT=str(server.port), SFERA_PG_DB=database)
        config = settings(env)
        make_application(NotesApplication, "identity", create_table=True, config=config).close()
        app = make_application(NotesApplication, "identity", config=config)
        broker = Broker(rabbitmq.amqp_uri)
        opened.append((app, broker))
        return app, config, broker

    yield open_
    for app, broker in opened:
        broker.connection.close()
        app.close()


def commit(app: ServiceApplication) -> tuple[str, float]:
    note = Note(text="x")
    app.save(note)
    return str(note.id), time.monotonic()


def test_on_postgres_a_commit_wakes_the_relay_long_before_its_safety_poll(open_store, rabbitmq):
    app, config, broker = open_store("postgres")
    with Relay(app, rabbitmq.amqp_uri, config, safety_poll=5.0) as relay:
        first, at = commit(app)                   # also proves a commit before LISTEN is not left for the poll
        broker.arrival(first)
        time.sleep(0.5)
        delays = []
        for _ in range(5):
            user, at = commit(app)
            delays.append(broker.arrival(user) - at)
            time.sleep(0.3)
        reads_before_idle = relay.reads
        time.sleep(2.0)
        idle_reads = relay.reads - reads_before_idle
    assert max(delays) < 0.2, delays
    assert idle_reads == 0, idle_reads            # idle: no reads at all until the safety poll (5 s)


def test_on_sqlite_an_idle_relay_backs_off_and_polls_fast_again_on_activity(open_store, rabbitmq):
    app, config, broker = open_store("sqlite")
    with Relay(app, rabbitmq.amqp_uri, config, poll_interval=0.02, idle_poll=0.25) as relay:
        user, _ = commit(app)
        broker.arrival(user)
        time.sleep(1.0)                           # backed off by now
        reads_before_idle = relay.reads
        time.sleep(2.0)
        idle_reads = relay.reads - reads_before_idle
        delays = []
        for _ in range(3):
            user, at = commit(app)
            delays.append(broker.arrival(user) - at)
        burst_reads = relay.reads
        time.sleep(0.1)
        burst_reads = relay.reads - burst_reads
    assert idle_reads <= 10, idle_reads            # 20 ms polling would read ~100 times in 2 s; 250 ms: 8
    assert max(delays) < 0.5, delays               # at worst one idle interval and a publish
    assert burst_reads >= 2, burst_reads           # right after activity it polls fast again (20, 40 ms, ...)
