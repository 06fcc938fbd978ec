"""Event stores of every kind: exactly-once processing and the relay's position."""

import threading
import uuid

import pytest
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import Tracking

from shared.store import ServiceApplication, make_application, store_env

pytestmark = pytest.mark.integration


class Tally(Aggregate):
    """Counts what happened to it: applying an event twice would show."""

    @event("Started")
    def __init__(self):
        self.count = 0

    @event("Incremented")
    def increment(self):
        self.count += 1


class TallyApplication(ServiceApplication):
    name = "tally"

    def apply(self, event_id: str, tally_id: uuid.UUID) -> bool:
        tally: Tally = self.repository.get(tally_id)
        tally.increment()
        return self.process_once(event_id, tally)


def test_store_env_per_persistence_kind(store_settings):
    env = store_env("school", config=store_settings)
    assert env["CREATE_TABLE"] == ("y" if store_settings.persistence == "memory" else "n")
    if store_settings.persistence == "postgres":
        assert env["POSTGRES_SCHEMA"] == "school"
    if store_settings.persistence == "sqlite":
        assert env["SQLITE_DBNAME"].endswith("stores/school.sqlite")


def test_an_event_is_applied_once_however_often_it_arrives(store_settings):
    app = make_application(TallyApplication, "tally", create_table=True, config=store_settings)
    tally = Tally()
    app.save(tally)
    assert app.apply("identity:1:UserRegistered.v1", tally.id) is True
    assert app.apply("identity:1:UserRegistered.v1", tally.id) is False
    assert app.apply("identity:2:UserRegistered.v1", tally.id) is True
    assert app.repository.get(tally.id).count == 2
    assert app.already_processed("identity:1:UserRegistered.v1")
    assert not app.already_processed("identity:3:UserRegistered.v1")


def test_concurrent_copies_of_one_event_apply_once(durable_store_settings):
    setup = make_application(TallyApplication, "tally", create_table=True, config=durable_store_settings)
    tally = Tally()
    setup.save(tally)
    apps = [make_application(TallyApplication, "tally", config=durable_store_settings) for _ in range(4)]
    barrier = threading.Barrier(len(apps))
    outcomes: list[object] = []

    def deliver(app):
        barrier.wait()
        try:
            outcomes.append(app.apply("identity:9:UserRegistered.v1", tally.id))
        except Exception as exc:  # the loser of a version race may only retry
            outcomes.append(type(exc).__name__)

    threads = [threading.Thread(target=deliver, args=(a,)) for a in apps]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count(True) == 1
    assert setup.repository.get(tally.id).count == 1


def test_relay_position_only_moves_forward(store_settings):
    app = make_application(TallyApplication, "tally", create_table=True, config=store_settings)
    recorder = app.process_recorder
    assert recorder.max_tracking_id("outbox:tally") is None
    recorder.insert_tracking(Tracking("outbox:tally", 5))
    recorder.insert_tracking(Tracking("outbox:tally", 9))
    assert recorder.max_tracking_id("outbox:tally") == 9


def test_processed_ids_do_not_appear_in_the_outbox(store_settings):
    app = make_application(TallyApplication, "tally", create_table=True, config=store_settings)
    tally = Tally()
    app.save(tally)
    before = app.process_recorder.max_notification_id()
    app.process_once("x:1", None)
    assert app.process_recorder.max_notification_id() == before
