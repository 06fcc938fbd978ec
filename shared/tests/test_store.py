"""Event stores of every kind: exactly-once processing and the relay's position."""

import threading
import uuid

import pytest
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import Tracking

from shared.config import settings
from shared.store import (
    ServiceApplication,
    StaleWrite,
    command,
    make_application,
    once_per_event,
    query,
    store_env,
)
from shared.store.testing import ReadsAtAVersion, racing, run_together

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

    @once_per_event
    def count(self, tally_id: uuid.UUID, *, event_id: str) -> bool:
        """How an application applies an event: plain values and the event's id (its handler read the event)."""
        self.decided = [*getattr(self, "decided", []), event_id]  # what the method read and decided
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


def test_an_application_method_given_the_event_id_sees_a_processed_event_never_again(store_settings):
    """``@once_per_event`` on a method called with ``event_id=`` (no event object): the same check first."""
    app = make_application(TallyApplication, "tally", create_table=True, config=store_settings)
    tally = Tally()
    app.save(tally)
    assert app.count(tally.id, event_id="school:9:Incremented.v1") is True
    assert app.count(tally.id, event_id="school:9:Incremented.v1") is False
    assert app.decided == ["school:9:Incremented.v1"] and app.repository.get(tally.id).count == 1


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


# -- retried commands: read, decide and save inside; a bare save cannot be retried ------------------------


class TallyCommands(TallyApplication):
    def increment_retried(self, tally_id: uuid.UUID) -> int:
        def increment() -> int:
            tally: Tally = self.repository.get(tally_id)
            tally.increment()
            self.save(tally)
            return tally.count

        return self.retrying(increment)

    def increment_bare_save(self, tally_id: uuid.UUID) -> int:
        tally: Tally = self.repository.get(tally_id)
        tally.increment()
        self.retrying(lambda: self.save(tally))
        return tally.count

    @command
    def increment_command(self, tally_id: uuid.UUID) -> int:
        tally: Tally = self.repository.get(tally_id)
        tally.increment()
        self.save(tally)
        return tally.count


def _replicas(settings, n=2):
    setup = make_application(TallyCommands, "tally", create_table=True, config=settings)
    tally = Tally()
    setup.save(tally)
    return setup, tally, [make_application(TallyCommands, "tally", config=settings) for _ in range(n)]


def test_a_bare_save_passed_to_retrying_is_refused_before_it_can_lose_a_write(store_settings):
    setup, tally, _ = _replicas(store_settings, 0)
    with pytest.raises(StaleWrite):
        setup.increment_bare_save(tally.id)
    assert setup.repository.get(tally.id).count == 0
    assert setup.increment_retried(tally.id) == 1


def test_a_new_aggregate_made_before_the_attempt_is_refused_when_the_attempt_runs_again(store_settings):
    app = make_application(TallyCommands, "tally", create_table=True, config=store_settings)
    made_outside = Tally()
    app.retrying(lambda: app.save(made_outside))  # first attempt: it still holds its creation event
    with pytest.raises(StaleWrite):
        app.retrying(lambda: app.save(made_outside))  # what a retry would do: its events are gone


@pytest.mark.parametrize("method", ["increment_retried", "increment_command"])
def test_replicas_racing_on_one_aggregate_both_count(durable_store_settings, method):
    setup, tally, (a, b) = _replicas(durable_store_settings)
    with racing(a, b):
        results = run_together(lambda: getattr(a, method)(tally.id), lambda: getattr(b, method)(tally.id))
    assert sorted(results) == [1, 2]
    assert setup.repository.get(tally.id).count == 2


def test_a_lost_race_is_counted_as_a_retry_of_its_service(durable_store_settings):
    """sfera_command_retries_total: how often replicas (or threads) race on a hot aggregate (issue #17)."""
    from prometheus_client import REGISTRY

    def retries() -> float:
        return REGISTRY.get_sample_value("sfera_command_retries_total", {"service": "tally", "outcome": "retried"}) or 0

    setup, tally, (a, b) = _replicas(durable_store_settings)
    before = retries()
    with racing(a, b):
        run_together(lambda: a.increment_retried(tally.id), lambda: b.increment_retried(tally.id))
    assert retries() == before + 1  # the loser ran once more; the winner never
    assert setup.repository.get(tally.id).count == 2


@pytest.fixture
def postgres_settings(postgres, tmp_path):
    database = f"hot{uuid.uuid4().hex[:8]}"
    postgres.ensure_database(database)
    return settings({"SFERA_VAR_DIR": str(tmp_path / "var"), "PERSISTENCE": "postgres",
                     "SFERA_PG_PORT": str(postgres.port), "SFERA_PG_DB": database})


def test_replicas_take_turns_on_a_hot_key_instead_of_racing_on_postgres(postgres_settings):
    """A keyed command takes its key's lock across processes too (a PostgreSQL advisory lock beside the
    in-process one): two replicas hammering one aggregate wait for each other and never lose a race (issue #17)."""
    from prometheus_client import REGISTRY

    def retries() -> float:
        return REGISTRY.get_sample_value("sfera_command_retries_total", {"service": "tally", "outcome": "retried"}) or 0

    setup, tally, (a, b) = _replicas(postgres_settings)
    before = retries()

    def hammer(app: TallyCommands) -> None:
        for _ in range(30):
            app.retrying(lambda: app.increment_retried(tally.id), key=("tally", tally.id))

    run_together(lambda: hammer(a), lambda: hammer(b))
    assert setup.repository.get(tally.id).count == 60
    assert retries() == before  # no race lost: they took turns


def test_a_command_inside_a_retried_command_is_part_of_its_attempt(store_settings):
    setup, tally, _ = _replicas(store_settings, 0)
    calls = []

    def outer() -> int:
        calls.append(1)
        return setup.increment_retried(tally.id)

    assert setup.retrying(outer) == 1
    assert calls == [1]


class TallyQueries(TallyCommands):
    @query
    def counts(self, *tally_ids: uuid.UUID) -> list:
        """Reads only: each tally as found, twice (the objects themselves, for the test)."""
        return [(self.find(Tally, t), self.find(Tally, t)) for t in tally_ids]

    @query
    def count_then_increment(self, tally_id: uuid.UUID) -> tuple:
        """A query that runs a command: the command's attempt reads its own copy, as always."""
        seen = self.find(Tally, tally_id)
        return seen, self.increment_found(tally_id)

    @command
    def increment_found(self, tally_id: uuid.UUID) -> int:
        tally = self.find(Tally, tally_id)  # in the attempt: a copy (the cache's object, it would count on it)
        tally.increment()
        self.save(tally)
        return tally.count


def test_a_query_reads_the_caches_aggregates_and_a_command_its_own_copies(store_settings):
    """A ``@query`` (issue #17: a history page copied the cached chat and its full message pages, ~0.6 ms a page)
    reads the aggregate cache's own objects, not a copy each; a command, even one a query runs, gets its copies,
    so what it changes reaches the cache only by its save."""
    app = make_application(TallyQueries, "tally", create_table=True, config=store_settings)
    tally = Tally()
    app.save(tally)
    [(first, again)] = app.counts(tally.id)
    assert first is again and first.count == 0  # the cache's object, not one copy a read
    assert app.find(Tally, tally.id) is not first  # outside a query: a copy, as before
    seen, counted = app.count_then_increment(tally.id)
    assert seen is first and counted == 1
    assert first.count == 0  # the command changed its own copy: the object the query read is untouched
    [(now, _)] = app.counts(tally.id)
    assert now.count == 1  # the save reached the cache
    assert app.counts(uuid.uuid4()) == [(None, None)]


class SnapshottedTallies(TallyQueries):
    """Tallies snapshotted every 3 events, taken of the object saved."""

    snapshots_as_saved = {Tally: 3}


def test_a_snapshot_is_taken_of_the_aggregate_saved_with_no_read_and_equals_the_replayed_one(store_settings,
                                                                                            monkeypatch):
    """Issue #17: eventsourcing takes a snapshot of the aggregate read again at the snapshot's version (its snapshot
    before and the events since, a round trip and a replay) inside the command's turn; of an aggregate listed in
    ``snapshots_as_saved`` it is taken of the object just saved, and is the same state as the replay's. Where the
    version crosses in the middle of a save, and for the classes not listed, as before."""
    app = make_application(SnapshottedTallies, "tally", create_table=True, config=store_settings)
    tally = Tally()
    app.save(tally)
    app.find(Tally, tally.id)  # cached from here on
    reads = ReadsAtAVersion(app, monkeypatch)
    for _ in range(5):  # versions 2..6: snapshots at 3 and 6
        app.increment_found(tally.id)
    assert reads.count == 0  # no aggregate read again at a snapshot's version
    taken = [s.originator_version for s in app.snapshots.get(tally.id)]
    assert taken == [3, 6]
    snapshot = list(app.snapshots.get(tally.id, desc=True, limit=1))[0]
    replayed = None
    for stored in app.events.get(tally.id, lte=6):  # every event from the first, no snapshot
        replayed = stored.mutate(replayed)
    assert snapshot.state["count"] == replayed.count == 5
    assert {k: v for k, v in snapshot.state.items() if not k.startswith("_")} == {"count": 5}

    both = app.find(Tally, tally.id)  # versions 7..10 in one save: the interval (9) crossed in the middle of it
    for _ in range(4):
        both.increment()
    reads.count = 0
    app.save(both)
    assert reads.count == 1  # version 9 is not the saved object's (10): read again at 9, eventsourcing's way
    assert [s.originator_version for s in app.snapshots.get(tally.id)][-1] == 9
    assert list(app.snapshots.get(tally.id, desc=True, limit=1))[0].state["count"] == 8
    again = make_application(SnapshottedTallies, "tally", config=store_settings) \
        if store_settings.persistence != "memory" else app
    assert again.repository.get(tally.id).count == 9  # its snapshot at 9 and the one event after it

