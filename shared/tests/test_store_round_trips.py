"""Issue #17, "event pipeline": a save on PostgreSQL is one round trip to the server (shared/store/recorders.py), and
notification ids stay gap-free in commit order for a reader paging the log while many writers save."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError, Tracking

from shared.clock import utcnow
from shared.config import settings
from shared.contracts import CloudEvent
from shared.store import make_application
from shared.store.group import ALSO_TRACKING
from shared.store.recorders import BEFORE_ANY_VERSION
from shared.tests.test_store import Tally, TallyApplication
from tests.fixtures.ledger import LedgerApplication

pytestmark = pytest.mark.integration


class RoundTripCounter:
    """A TCP proxy in front of PostgreSQL counting round trips: each time the server answers after the client
    has sent something (on any connection), one."""

    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.round_trips = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.upstream_port))
            last = [""]
            threading.Thread(target=self._pump, args=(client, server, "client", last), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, "server", last), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, side: str, last: list[str]) -> None:
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                data = b""
            if not data:
                try:
                    target.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return
            with self.lock:  # counted before the client can see the answer
                if side == "server" and last[0] == "client":
                    self.round_trips += 1
                last[0] = side
            target.sendall(data)

    def count(self, call: Callable[[], Any]) -> int:
        time.sleep(0.02)  # nothing of a call before still in flight
        before = self.round_trips
        call()
        return self.round_trips - before

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def counted(postgres):
    """Applications whose store is reached through a round-trip counter."""
    made: list[tuple[Any, RoundTripCounter]] = []

    def make(cls: type = TallyApplication, service: str = "tally") -> tuple[Any, RoundTripCounter]:
        database = f"rt{uuid.uuid4().hex[:8]}"
        postgres.ensure_database(database)
        counter = RoundTripCounter(postgres.port)
        config = settings({"PERSISTENCE": "postgres", "SFERA_PG_PORT": str(counter.port), "SFERA_PG_DB": database})
        made.append((make_application(cls, service, create_table=True, config=config), counter))
        return made[-1]

    yield make
    for app, counter in made:
        app.close()
        counter.close()


@pytest.fixture
def counted_app(counted):
    """A Tally application whose store is reached through the round-trip counter."""
    return counted()


def test_a_save_is_one_round_trip_with_its_tracking_ids(counted_app):
    app, counter = counted_app
    tally = Tally()
    app.save(tally)
    recorder = app.process_recorder
    # every connection of the pool (it hands them out in turn) has prepared each statement, each shape of a save
    # (events alone, events and tracking ids, tracking ids alone): each one's first use is a round trip of its own
    for _ in range(12):
        app.repository.get(tally.id)
    for _ in range(12):
        app.save(Tally())
    for i in range(12):
        app.save(Tally(), processed=Tracking(f"warm:{i}", 1))
    for i in range(12):
        recorder.insert_tracking_unsynced(Tracking("relay:position", i))

    def save(processed: Tracking | None = None) -> None:
        current = app.repository.get(tally.id)
        current.increment()
        stored = [app.mapper.to_stored_event(e) for e in current.collect_events()]
        if processed is None:
            counted["plain"] = counter.count(lambda: recorder.insert_events(stored))
        else:  # as a group commit writes several saves: their events and every tracking id
            counted["group"] = counter.count(lambda: recorder.insert_events(
                stored, tracking=processed, **{ALSO_TRACKING: [Tracking("evt:also:1", 1), Tracking("evt:also:2", 1)]}))

    counted: dict[str, int] = {}
    save()
    save(Tracking("evt:first", 1))
    assert counted == {"plain": 1, "group": 1}  # eventsourcing's insert_events: 5 and 6
    assert recorder.max_tracking_id("evt:also:2") == 1
    # process_once: no read of its own before the save (an event processed before fails the save instead)
    current = app.repository.get(tally.id)
    current.increment()
    assert counter.count(lambda: app.process_once("evt:second", current)) == 1
    # the relay's position
    assert counter.count(lambda: recorder.insert_tracking_unsynced(Tracking("relay:position", 17))) == 1
    assert recorder.max_tracking_id("relay:position") == 17
    assert app.repository.get(tally.id).count == 3  # the two saves, process_once's


def test_the_pipeline_benchmark_s_consumer_reads_once_and_saves_once_per_event(counted):
    """bench.pipeline's ledger (tests/fixtures/ledger.py) applying a UserRegistered: its tally's read, the save
    (was ``in repository`` and ``get``: two reads, a read of the event's id and the six of the save)."""
    app, counter = counted(LedgerApplication, "ledger")

    def apply(user_id: uuid.UUID, event_id: str) -> int:
        event = CloudEvent(id=event_id, source="identity", type="identity.UserRegistered.v1", time=utcnow(),
                           subject=None, data={"user_id": user_id})
        return counter.count(lambda: app.count(event))

    users = [uuid.uuid4() for _ in range(3)]
    for i in range(12):  # every connection of the pool has prepared eventsourcing's reads
        apply(users[i % 3], f"warm:{i}")
    # the fewest of three (a connection's first use of a read prepares it, in a round trip of its own)
    assert min(apply(uuid.uuid4(), f"new:{i}") for i in range(3)) == 2
    assert min(apply(users[i], f"again:{i}") for i in range(3)) == 2
    assert app.tally(users[0]) == 5


def test_concurrent_reads_of_aggregates_share_one_statement_and_each_gets_its_own_events(counted_app):
    """Issue #17, "event pipeline": a consumer's workers each read the aggregate their event changes (bench.pipeline's
    ledger: a round trip an event); reads asked while one runs go in the next statement together
    (shared/store/group.py, EventGroupRead). The first read is held until the others have queued behind it, so
    the grouping does not hang on the threads' timing: 1 statement for it, 1 for the other five (was 6)."""
    app, counter = counted_app
    tallies = [Tally() for _ in range(6)]
    for i, tally in enumerate(tallies):
        for _ in range(i):
            tally.increment()
        app.save(tally)
    recorder = app.process_recorder
    group = recorder.read_group
    select_many, held, leading = group.select_many, [False], threading.Event()

    def first_waits_for_the_others(pairs):
        if held[0]:
            leading.set()
            deadline = time.monotonic() + 5
            while group.waiting() < len(tallies) - 1 and time.monotonic() < deadline:
                time.sleep(0.001)
            held[0] = False
        return select_many(pairs)

    group.select_many = first_waits_for_the_others
    for i in range(12):  # every connection of the pool has prepared both reads (one aggregate's, several's)
        recorder.select_events(tallies[i % 6].id)
        recorder.select_events_after([(tallies[0].id, BEFORE_ANY_VERSION), (tallies[1].id, BEFORE_ANY_VERSION)])
    held[0] = True
    found: dict = {}

    def read(tally: Tally) -> None:
        found[tally.id] = recorder.select_events(tally.id)

    def read_all() -> None:
        threads = [threading.Thread(target=read, args=(tally,)) for tally in tallies]
        threads[0].start()
        assert leading.wait(5)  # the first one leads
        for thread in threads[1:]:
            thread.start()
        for thread in threads:
            thread.join(10)

    assert counter.count(read_all) == 2
    for i, tally in enumerate(tallies):
        assert [(e.originator_id, e.originator_version) for e in found[tally.id]] == \
            [(tally.id, v) for v in range(1, i + 2)]
    # a read after a version (a cached aggregate brought up to date) gets only what came after it
    assert [e.originator_version for e in recorder.select_events(tallies[5].id, gt=4)] == [5, 6]
    assert [e.originator_version for e in recorder.select_events(tallies[5].id, gt=2, lte=4)] == [3, 4]
    assert app.repository.get(tallies[3].id).count == 3


def test_group_reads_can_be_turned_off(counted, monkeypatch):
    monkeypatch.setenv("SFERA_STORE_GROUP_READ", "off")
    app, _ = counted()
    assert app.process_recorder.read_group is None
    tally = Tally()
    app.save(tally)
    assert app.repository.get(tally.id).count == 0


def test_one_statement_saves_keep_the_store_s_errors(counted_app):
    app, _ = counted_app
    tally = Tally()
    app.save(tally)
    recorder = app.process_recorder
    assert app.apply("evt:1", tally.id) is True
    assert app.apply("evt:1", tally.id) is False  # processed before
    stale = app.repository.get(tally.id)
    moved = app.repository.get(tally.id)
    moved.increment()
    app.save(moved)
    stale.increment()
    with pytest.raises(IntegrityError):  # a version taken
        app.save(stale, processed=Tracking("evt:2", 1))
    assert recorder.max_tracking_id("evt:2") is None  # nothing of the failed save
    with pytest.raises(IntegrityError):  # one tracking id twice in one group
        recorder.insert_events([], tracking=Tracking("evt:3", 1), **{ALSO_TRACKING: [Tracking("evt:3", 1)]})
    assert recorder.max_tracking_id("evt:3") is None
    recorder.insert_tracking_unsynced(Tracking("relay", 5))
    with pytest.raises(IntegrityError):  # a position does not move back
        recorder.insert_tracking_unsynced(Tracking("relay", 4))
    assert recorder.max_tracking_id("relay") == 5
    assert app.repository.get(tally.id).count == 2


def test_a_store_migrated_before_the_function_saves_as_eventsourcing_does(counted_app):
    app, counter = counted_app
    recorder = app.process_recorder
    with recorder.datastore.transaction(commit=True) as curs:
        curs.execute(f'DROP FUNCTION "{recorder.datastore.schema}".sfera_insert_events')
    tally = Tally()
    app.save(tally)
    assert recorder.has_insert_function is False
    assert app.apply("evt:1", tally.id) is True and app.apply("evt:1", tally.id) is False
    recorder.insert_tracking_unsynced(Tracking("relay", 3))
    assert recorder.max_tracking_id("relay") == 3 and app.repository.get(tally.id).count == 1


def test_a_reader_paging_the_log_during_concurrent_saves_never_skips_or_repeats_an_id(postgres):
    """Writers on separate connections (the replicas of a service, its consumers' group commits) commit in any
    order; the notification log a reader pages by id must still hold every id it passed once it passed it."""
    database = f"order{uuid.uuid4().hex[:8]}"
    postgres.ensure_database(database)
    config = settings({"PERSISTENCE": "postgres", "SFERA_PG_PORT": str(postgres.port), "SFERA_PG_DB": database})
    apps = [make_application(TallyApplication, "tally", create_table=(i == 0), config=config) for i in range(4)]
    writers, saves_each = 8, 60
    done = threading.Event()
    errors: list[BaseException] = []

    def write(w: int) -> None:
        app = apps[w % len(apps)]
        try:
            for i in range(saves_each):
                tallies = [Tally() for _ in range(1 + i % 3)]  # transactions of one to three events
                app.save(*tallies, processed=Tracking(f"evt:{w}:{i}", 1) if w % 2 else None)
        except BaseException as exc:  # noqa: BLE001 - the test reports it
            errors.append(exc)

    seen: list[int] = []

    def read() -> None:
        recorder = apps[0].process_recorder
        position = 0
        while True:
            finished = done.is_set()
            batch = recorder.select_notifications(start=position + 1, limit=7)
            seen.extend(n.id for n in batch)
            if batch:
                position = batch[-1].id
            elif finished:
                return

    reader = threading.Thread(target=read)
    reader.start()
    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    done.set()
    reader.join(60)
    assert not errors
    total = sum(1 + i % 3 for i in range(saves_each)) * writers
    every = [n.id for n in apps[0].process_recorder.select_notifications(start=1, limit=total + 10)]
    assert len(every) == total
    assert seen == every  # in order, none skipped, none twice
    assert every == list(range(every[0], every[0] + total))  # gap-free
    for app in apps:
        app.close()


def test_the_benchmark_s_baseline_saves_as_eventsourcing_does(counted, monkeypatch):
    """``SFERA_STORE_SAVE_FUNCTION=off`` (bench.pipeline's baseline of the same run): eventsourcing's transaction."""
    monkeypatch.setenv("SFERA_STORE_SAVE_FUNCTION", "off")
    app, counter = counted()
    tally = Tally()
    app.save(tally)
    for i in range(12):
        app.apply(f"warm:{i}", tally.id)
    current = app.repository.get(tally.id)
    current.increment()
    assert counter.count(lambda: app.process_once("evt:1", current)) >= 5
    assert app.apply("evt:1", tally.id) is False and app.repository.get(tally.id).count == 13
