"""Issue #17, "event pipeline": what the PostgreSQL recorder's statements cost the server, whatever plan it settles
on. A prepared statement (psycopg prepares every read) is planned for its parameters' values a few times, then
PostgreSQL may keep one generic plan for any values: the plan must not depend on that."""

from __future__ import annotations

import re
import uuid

import psycopg
import pytest
from eventsourcing.persistence import Tracking

from shared.config import settings
from shared.store import make_application
from shared.store.recorders import BEFORE_ANY_VERSION
from shared.tests.test_store import Tally, TallyApplication

pytestmark = pytest.mark.integration


@pytest.fixture
def app(postgres):
    database = f"st{uuid.uuid4().hex[:8]}"
    postgres.ensure_database(database)
    config = settings({"PERSISTENCE": "postgres", "SFERA_PG_PORT": str(postgres.port), "SFERA_PG_DB": database})
    made = make_application(TallyApplication, "tally", create_table=True, config=config)
    yield made
    made.close()


def generic_plan(recorder, statement, params: tuple[str, ...], values: tuple[str, ...]) -> str:
    """EXPLAIN of ``statement`` (psycopg's ``%s`` placeholders) prepared with ``params``' types, as the plan
    PostgreSQL keeps for every value (``plan_cache_mode = force_generic_plan``), run with ``values``."""
    kwargs = dict(recorder.datastore.pool.kwargs)
    kwargs.pop("row_factory", None)
    with psycopg.connect(autocommit=True, **kwargs) as conn:
        text = statement.as_string(conn)
        for n in range(1, len(params) + 1):
            text = text.replace("%s", f"${n}", 1)
        conn.execute("SET plan_cache_mode = force_generic_plan")
        conn.execute(f"PREPARE q({', '.join(params)}) AS {text}")
        rows = conn.execute(f"EXPLAIN EXECUTE q({', '.join(values)})").fetchall()
    return "\n".join(row[0] for row in rows)


def test_reading_several_aggregates_looks_each_one_up_by_its_key_whatever_the_plan(app):
    """``select_events_after`` (a consumer's group read, a command's read ahead) joined the events table to the
    pairs it was given: the generic plan of a table not analyzed yet (new, or grown since) hashed the pairs and
    scanned the whole table, every statement (bench.pipeline's ledger: 0.2 ms a read of 2,000 events, 0.7 ms
    of 12,000, growing with the table). Each pair is an index lookup now, in any plan."""
    tallies = [Tally() for _ in range(2000)]
    app.save(*tallies)
    recorder = app.process_recorder
    ids = [tallies[0].id, tallies[1].id, tallies[2].id]
    plan = generic_plan(recorder, recorder.sql_select_events_after, ("uuid[]", "bigint[]"),
                        ("ARRAY[{}]::uuid[]".format(", ".join(f"'{i}'" for i in ids)), "ARRAY[0, 0, 0]::bigint[]"))
    assert "Seq Scan" not in plan, plan
    assert re.search(r"Index (Only )?Scan|Bitmap Index Scan", plan), plan
    # what it answers: each aggregate's events after its version, in version order
    tallies[1].increment()
    tallies[1].increment()
    app.save(tallies[1])
    found = recorder.select_events_after([(ids[0], BEFORE_ANY_VERSION), (ids[1], 1), (uuid.uuid4(), 0)])
    assert {i: [e.originator_version for e in events] for i, events in found.items()} == {ids[0]: [1], ids[1]: [2, 3]}


def test_a_save_s_statement_is_parsed_and_planned_once_per_connection(app):
    """The one-statement save (shared/store/recorders.py) was sent unprepared: PostgreSQL parsed and planned it at
    every save, the producers' and the consumers' (bench.pipeline: about 0.05 ms of the server's CPU a save). Now
    each connection prepares each shape of it once (events alone, with tracking ids, tracking ids alone)."""
    recorder = app.process_recorder
    for _ in range(12):  # the pool hands its connections out in turn: each one gets each shape
        app.save(Tally())
    for i in range(12):
        app.save(Tally(), processed=Tracking(f"evt:{i}", 1))
    for i in range(12):
        recorder.insert_tracking_unsynced(Tracking("relay", i if i < 6 else 70_000 + i))  # smallint, integer alike
    with recorder.datastore.get_connection() as conn:
        prepared = [row["statement"] for row in conn.execute("SELECT statement FROM pg_prepared_statements")]
    saves = [s for s in prepared if "sfera_insert_events" in s]
    assert len(saves) == 3, prepared
    assert app.process_once("0", Tally()) is False  # "evt:0" processed before: refused as it always was
    assert recorder.max_tracking_id("relay") == 70_011
