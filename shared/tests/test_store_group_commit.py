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


def new_app(config) -> TallyApplication:
    return make_application(TallyApplication, f"tally_{uuid.uuid4().hex[:6]}", create_table=True, config=config)


def with_a_stale_copy(app: TallyApplication, n: int, k: int) -> tuple[list[Tally], Tally]:
    """``n`` tallies saved, and a copy of the ``k``-th incremented after it was read and before another save of it
    moved it on: saving the copy conflicts (its next version is taken)."""
    tallies = [Tally() for _ in range(n)]
    app.save(*tallies)
    stale = app.repository.get(tallies[k].id)
    moved = app.repository.get(tallies[k].id)
    moved.increment()
    app.save(moved)
    stale.increment()
    return tallies, stale


def groups_seen(service: str) -> tuple[float, float]:
    saves = metrics.store_group_saves.labels(service)
    return saves._sum.get(), sum(b.get() for b in saves._buckets)


def test_concurrent_processed_events_share_one_transaction_each_recorded_once(durable_store_settings):
    app = new_app(durable_store_settings)
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
    app = new_app(durable_store_settings)
    n = 8
    tallies, stale = with_a_stale_copy(app, n, 4)
    poison = tallies[4]
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
    app = new_app(durable_store_settings)
    assert app.events.group is None
    tally = Tally()
    app.save(tally)
    assert app.apply("identity:1:UserRegistered.v1", tally.id) is True
    assert app.apply("identity:1:UserRegistered.v1", tally.id) is False


def bump(app: TallyApplication, tally_id: uuid.UUID) -> int:
    """A command: read, decide, save (no tracking id)."""
    tally: Tally = app.repository.get(tally_id)
    tally.increment()
    app.save(tally)
    return tally.count


def test_concurrent_commands_saves_share_one_transaction(durable_store_settings):
    """Commands on different keys at once (posts into 5 chats, each in its chat's turn) took the events table's lock
    and committed one after the other; now they write together, each event once and in the log once."""
    app = new_app(durable_store_settings)
    n = 10
    tallies = [Tally() for _ in range(n)]
    app.save(*tallies)
    written = counting_transactions(app, hold_first_until_queued=n - 1)
    saved_before, commits_before = groups_seen(app.service)

    outcomes = run_threads([lambda t=t: bump(app, t.id) for t in tallies])

    assert outcomes == [1] * n
    assert written == [1, n - 1]  # the first alone, the other nine together
    assert [app.repository.get(t.id).count for t in tallies] == [1] * n
    saved, commits = groups_seen(app.service)
    assert (saved - saved_before, commits - commits_before) == (n, 2)
    log = app.recorder.select_notifications(start=1, limit=100)
    assert len(log) == 2 * n  # n created, n incremented: each once
    assert [e.id for e in log] == sorted(e.id for e in log)


def test_a_command_save_that_conflicts_in_a_shared_transaction_fails_alone(durable_store_settings):
    app = new_app(durable_store_settings)
    n = 6
    tallies, stale = with_a_stale_copy(app, n, 3)
    written = counting_transactions(app, hold_first_until_queued=n - 1)

    def save(i: int, tally: Tally):
        if i == 3:
            app.save(stale)
            return "saved"
        return bump(app, tally.id)

    outcomes = run_threads([lambda i=i, t=t: save(i, t) for i, t in enumerate(tallies)])

    assert isinstance(outcomes[3], IntegrityError)  # its command would run again (retrying) on what is stored now
    assert outcomes[:3] + outcomes[4:] == [1] * (n - 1)
    assert written == [1, n - 1] + [1] * (n - 1)  # together, refused, then each alone
    assert [app.repository.get(t.id).count for t in tallies] == [1, 1, 1, 1, 1, 1]


def test_racing_commands_on_one_aggregate_lose_nothing_when_their_saves_are_grouped(durable_store_settings):
    """Commands without a key racing on one aggregate: their saves meet in shared transactions that conflict; each
    is written again alone, the losers run again (``retrying``) and every increment counts once."""
    app = new_app(durable_store_settings)
    tally = Tally()
    app.save(tally)
    n = 12

    outcomes = run_threads([lambda: app.retrying(lambda: bump(app, tally.id)) for _ in range(n)])

    assert sorted(outcomes) == list(range(1, n + 1))
    assert app.repository.get(tally.id).count == n


def test_commands_saves_can_be_left_out_of_groups(durable_store_settings, monkeypatch):
    monkeypatch.setenv("SFERA_STORE_GROUP_SAVES", "off")  # the benchmark's baseline: processed events only
    app = new_app(durable_store_settings)
    assert app.events.group is not None
    n = 4
    tallies = [Tally() for _ in range(n)]
    app.save(*tallies)
    recorder = app.process_recorder
    original = recorder.insert_events
    written: list[int] = []

    def insert_events(stored_events, **kwargs):
        written.append(len(stored_events))
        return original(stored_events, **kwargs)

    recorder.insert_events = insert_events
    assert run_threads([lambda t=t: bump(app, t.id) for t in tallies]) == [1] * n
    assert written == [1] * n
    assert app.events.group.waiting() == 0
