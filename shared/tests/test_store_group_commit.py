"""Issue #17, faster event path: saves of processed events (``process_once``) made by concurrent consumer workers
share transactions (shared/store/group.py), each event still recorded exactly once, a failing one alone."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from eventsourcing.persistence import IntegrityError

from shared.config import settings
from shared.observability import metrics
from shared.store import make_application
from shared.tests.test_store import Tally, TallyApplication

pytestmark = pytest.mark.integration


def counting_transactions(app: TallyApplication, hold_first_until_queued: int) -> list[int]:
    """Counts the recorder's insert transactions (events written by each); the first one waits until
    ``hold_first_until_queued`` other saves queue behind it, so that they share the next one."""
    recorder = app.process_recorder
    original = recorder.insert_events
    group = app.events.group
    written: list[int] = []

    def insert_events(stored_events, **kwargs):
        if not written:
            deadline = time.monotonic() + 10
            while len(group._queue) < hold_first_until_queued and time.monotonic() < deadline:
                time.sleep(0.005)
        written.append(len(stored_events))
        return original(stored_events, **kwargs)

    recorder.insert_events = insert_events
    return written


def run_threads(calls) -> list[object]:
    outcomes: list[object] = [None] * len(calls)

    def run(i):
        try:
            outcomes[i] = calls[i]()
        except Exception as exc:  # noqa: BLE001 - the test looks at it
            outcomes[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
        time.sleep(0.002)  # the first one leads
    for t in threads:
        t.join(30)
    return outcomes


def groups_seen(service: str) -> tuple[float, float]:
    saves = metrics.store_group_saves.labels(service)
    return saves._sum.get(), sum(b.get() for b in saves._buckets)


def test_concurrent_processed_events_share_one_transaction_each_recorded_once(durable_store_settings):
    app = make_application(TallyApplication, f"tally_{uuid.uuid4().hex[:6]}", create_table=True,
                           config=durable_store_settings)
    assert app.events.group is not None
    n = 12
    tallies = [Tally() for _ in range(n)]
    app.save(*tallies)
    written = counting_transactions(app, hold_first_until_queued=n - 1)
    saved_before, commits_before = groups_seen(app.service)

    outcomes = run_threads([lambda t=t, i=i: app.apply(f"identity:{i}:UserRegistered.v1", t.id)
                            for i, t in enumerate(tallies)])

    assert outcomes == [True] * n
    assert written == [1, n - 1]  # two transactions: the first save alone, the other eleven together
    assert [app.repository.get(t.id).count for t in tallies] == [1] * n
    for i in range(n):
        assert app.process_recorder.max_tracking_id(f"evt:identity:{i}:UserRegistered.v1") == 1
    saved, commits = groups_seen(app.service)
    assert (saved - saved_before, commits - commits_before) == (n, 2)
    # Redelivered, every one of them is a duplicate: nothing applied twice.
    assert run_threads([lambda t=t, i=i: app.apply(f"identity:{i}:UserRegistered.v1", t.id)
                        for i, t in enumerate(tallies)]) == [False] * n
    assert [app.repository.get(t.id).count for t in tallies] == [1] * n


def test_a_failing_save_in_a_shared_transaction_fails_alone_the_others_apply_once(durable_store_settings):
    app = make_application(TallyApplication, f"tally_{uuid.uuid4().hex[:6]}", create_table=True,
                           config=durable_store_settings)
    n = 8
    tallies = [Tally() for _ in range(n)]
    app.save(*tallies)
    poison = tallies[4]
    stale = app.repository.get(poison.id)  # read before another save moves it on: its next version is taken
    moved = app.repository.get(poison.id)
    moved.increment()
    app.save(moved)
    stale.increment()
    written = counting_transactions(app, hold_first_until_queued=n - 1)
    failures_before = metrics.store_group_failures.labels(app.service)._value.get()

    def apply(i: int, tally: Tally):
        if tally is poison:
            return app.process_once(f"identity:{i}:UserRegistered.v1", stale)
        return app.apply(f"identity:{i}:UserRegistered.v1", tally.id)

    outcomes = run_threads([lambda i=i, t=t: apply(i, t) for i, t in enumerate(tallies)])

    assert isinstance(outcomes[4], IntegrityError)  # only the poison fails: its delivery retries / dead-letters
    assert outcomes[:4] + outcomes[5:] == [True] * (n - 1)
    # The first alone; the other seven together, refused; then each of the seven alone.
    assert written == [1, n - 1] + [1] * (n - 1)
    assert metrics.store_group_failures.labels(app.service)._value.get() == failures_before + 1
    assert [app.repository.get(t.id).count for t in tallies] == [1] * n
    assert app.process_recorder.max_tracking_id("evt:identity:4:UserRegistered.v1") is None
    for i in (0, 1, 2, 3, 5, 6, 7):
        assert app.process_recorder.max_tracking_id(f"evt:identity:{i}:UserRegistered.v1") == 1


def test_memory_stores_save_each_processed_event_alone():
    app = make_application(TallyApplication, "tally", config=settings({"PERSISTENCE": "memory"}))
    assert app.events.group is None
    tally = Tally()
    app.save(tally)
    assert app.apply("identity:1:UserRegistered.v1", tally.id) is True
    assert app.apply("identity:1:UserRegistered.v1", tally.id) is False


def test_group_commit_can_be_turned_off(durable_store_settings, monkeypatch):
    monkeypatch.setenv("SFERA_STORE_GROUP_COMMIT", "off")  # the benchmark's baseline: one transaction per event
    app = make_application(TallyApplication, f"tally_{uuid.uuid4().hex[:6]}", create_table=True,
                           config=durable_store_settings)
    assert app.events.group is None
    tally = Tally()
    app.save(tally)
    assert app.apply("identity:1:UserRegistered.v1", tally.id) is True
    assert app.apply("identity:1:UserRegistered.v1", tally.id) is False
