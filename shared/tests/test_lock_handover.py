"""Issue #17, "live chat delivery": commands of one process queued on one key (posts into one busy chat) pass the
key's cluster lock on from turn to turn instead of unlocking and locking again (two round trips a turn), a bounded
number of times in a row so that another replica waiting for the key gets it (shared/locks.py ``turn``)."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from shared.config import settings
from shared.locks import HANDOVERS, ClusterLocks
from shared.store import make_application
from shared.tests.test_store import TallyApplication
from shared.tests.test_store_round_trips import RoundTripCounter

pytestmark = pytest.mark.integration


def _counted(postgres):
    database = f"lh{uuid.uuid4().hex[:8]}"
    postgres.ensure_database(database)
    counter = RoundTripCounter(postgres.port)
    config = settings({"PERSISTENCE": "postgres", "SFERA_PG_PORT": str(counter.port), "SFERA_PG_DB": database})
    app = make_application(TallyApplication, "tally", create_table=True, config=config)
    other = ClusterLocks({"host": "127.0.0.1", "port": postgres.port, "dbname": database, "user": "postgres"},
                         timeout=30)
    yield app, counter, other
    other.close()
    app.close()
    counter.close()


@pytest.fixture
def counted_app(postgres):
    yield from _counted(postgres)


@pytest.fixture
def counted_app_unlocking_every_turn(postgres, monkeypatch):
    monkeypatch.setenv("SFERA_CLUSTER_LOCK_HANDOVERS", "0")  # bench.messaging_post's baseline
    yield from _counted(postgres)


def queued_turns(app, key, commands: int, each=lambda n: None) -> list[int]:
    """``commands`` keyed commands of ``app`` (threads), all queued behind the first before it ends; their order."""
    order: list[int] = []
    first_in, go = threading.Event(), threading.Event()

    def command(n: int) -> None:
        if n == 0:
            first_in.set()
            go.wait(10)
        each(n)
        order.append(n)

    threads = [threading.Thread(target=app.retrying, args=(lambda n=n: command(n), key)) for n in range(commands)]
    threads[0].start()
    first_in.wait(10)
    for t in threads[1:]:
        t.start()
    deadline = time.monotonic() + 10
    while app.locks.locks[key].count < commands and time.monotonic() < deadline:
        time.sleep(0.005)
    go.set()
    for t in threads:
        t.join(30)
    return order


def test_turns_queued_in_one_process_hand_the_cluster_lock_on(counted_app):
    """Six commands queued on one key: the cluster lock taken once and released once (2 round trips; it was 2 a
    turn: 12), each command still alone in its turn, and the key free for another replica afterwards."""
    app, counter, other = counted_app
    with app.cluster_locks.hold("warm"):  # the lock connection is open
        pass
    key = ("chat", uuid.uuid4())
    inside = [0]
    most = [0]

    def each(n: int) -> None:
        inside[0] += 1
        most[0] = max(most[0], inside[0])
        time.sleep(0.01)
        inside[0] -= 1

    trips = counter.count(lambda: queued_turns(app, key, 6, each))
    assert trips <= 2, trips
    assert most[0] == 1
    assert key not in app.locks.locks
    with other.hold(f"tally:{key!r}") as locked:  # released: another replica takes it at once
        assert locked


def test_with_no_handovers_each_turn_locks_and_unlocks(counted_app_unlocking_every_turn):
    app, counter, _ = counted_app_unlocking_every_turn
    with app.cluster_locks.hold("warm"):
        pass
    key = ("chat", uuid.uuid4())
    assert counter.count(lambda: queued_turns(app, key, 6)) >= 12  # two a turn


def test_another_replica_waiting_for_the_key_gets_it_after_at_most_the_handovers(counted_app):
    app, _, other = counted_app
    key = ("chat", uuid.uuid4())
    name = f"tally:{key!r}"
    events: list[str] = []
    other_waiting = threading.Event()

    def replica_two() -> None:
        other_waiting.set()
        with other.hold(name) as locked:
            events.append(f"other {locked}")

    waiter = threading.Thread(target=replica_two)

    def each(n: int) -> None:
        if n == 0:  # the other replica asks for the key while this process holds it with a queue behind
            waiter.start()
            other_waiting.wait(10)
            time.sleep(0.2)  # its pg_advisory_lock is waiting on the server
        events.append(str(n))

    total = HANDOVERS + 4
    queued_turns(app, key, total, each)
    waiter.join(30)
    assert "other True" in events
    assert events.index("other True") <= HANDOVERS + 1, events  # after the first turn and its handovers
    assert sorted(int(e) for e in events if e.isdigit()) == list(range(total))
