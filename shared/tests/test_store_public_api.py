"""shared.store builds on eventsourcing's public API only (issue #16): ``process_once`` records an event's id
with its effect through ``Application.save``, so snapshots, the aggregate cache and notifications happen as for
any save, and an upgrade of eventsourcing that changes its private methods cannot break it silently."""

import ast
import uuid
from pathlib import Path

import pytest
from eventsourcing.application import Application, Repository
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import EventStore, InfrastructureFactory

from shared.store import ServiceApplication, make_application

pytestmark = pytest.mark.integration

STORE = Path(__file__).resolve().parents[1] / "store"


class Counter(Aggregate):
    @event("Started")
    def __init__(self):
        self.count = 0

    @event("Counted")
    def up(self):
        self.count += 1


class CounterApplication(ServiceApplication):
    name = "counter"
    snapshotting_intervals = {Counter: 2}

    def count(self, counter_id: uuid.UUID, *, event_id: str) -> bool:
        counter: Counter = self.repository.get(counter_id)
        counter.up()
        return self.process_once(event_id, counter)


def _privates(*classes: type) -> set[str]:
    return {name for cls in classes for klass in cls.__mro__ if klass.__module__.startswith("eventsourcing")
            for name in vars(klass) if name.startswith("_") and not name.startswith("__")}


@pytest.mark.unit
def test_shared_store_calls_no_private_method_of_eventsourcing():
    """``process_once`` called ``_record``, ``_take_snapshots`` and ``_notify``; none of eventsourcing's private
    names is used in shared/store (its own private helpers are named differently)."""
    privates = _privates(Application, Repository, EventStore, InfrastructureFactory)
    assert {"_record", "_take_snapshots", "_notify"} <= privates
    used = sorted(f"{path.name}:{node.lineno} {node.attr}" for path in STORE.glob("*.py")
                  for node in ast.walk(ast.parse(path.read_text()))
                  if isinstance(node, ast.Attribute) and node.attr in privates)
    assert used == []


def test_process_once_records_the_event_with_its_effect_and_snapshots_like_any_save(store_settings):
    app = make_application(CounterApplication, "counter", create_table=True, config=store_settings)
    counter = Counter()
    app.save(counter)
    assert app.count(counter.id, event_id="school:1:Counted.v1") is True
    assert app.count(counter.id, event_id="school:1:Counted.v1") is False  # recorded with the effect
    assert app.already_processed("school:1:Counted.v1")
    assert app.count(counter.id, event_id="school:2:Counted.v1") is True
    assert app.repository.get(counter.id).count == 2
    snapshots = list(app.snapshots.get(counter.id)) if app.snapshots else []
    assert [s.originator_version for s in snapshots] == [2]  # the interval of 2 reached by process_once's save


def test_a_plain_save_still_records_no_event_id(store_settings):
    app = make_application(CounterApplication, "counter", create_table=True, config=store_settings)
    counter = Counter()
    app.save(counter)
    assert app.process_recorder.max_tracking_id("evt:anything") is None
    assert app.count(counter.id, event_id="anything") is True
    assert app.process_recorder.max_tracking_id("evt:anything") == 1
