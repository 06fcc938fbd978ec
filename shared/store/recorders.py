"""eventsourcing's process recorders that record several tracking ids in one insert (group commit,
shared/store/group.py); chosen with ``PROCESS_RECORDER_TOPIC`` (shared.store.store_env). Imports psycopg:
imported by eventsourcing's factory only, never by ``shared.store`` itself (docs/architecture.md, eventlet).

On PostgreSQL a save is one round trip (issue #17, "event pipeline"): eventsourcing's ``insert_events`` takes six
(BEGIN; the tracking row, whose result it waits for; lock, notify and insert; two pipeline syncs; COMMIT), each
while the events table's lock is held from the third on. Ours calls one server-side function, created with the
tables (``create_table``, the migration step), in an autocommit statement: it records the tracking ids, takes the
same ``LOCK TABLE ... IN EXCLUSIVE MODE`` as eventsourcing (so notification ids are still issued and committed in
one order: a reader paging the log by id never passes an id that a later commit fills in; eventsourcing's own
writers and ours exclude each other), notifies the table's channel and inserts the events, returning their ids.
Same errors: a tracking id recorded before and an event's version taken both raise ``IntegrityError``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent, Tracking
from eventsourcing.postgres import PostgresProcessRecorder
from eventsourcing.sqlite import SQLiteProcessRecorder
from eventsourcing.utils import retry
from psycopg.sql import SQL, Identifier
from psycopg.types.numeric import Int8

from shared.config import env_str
from shared.store.group import ALSO_TRACKING, EventGroupRead

INSERT_FUNCTION = "sfera_insert_events"
BEFORE_ANY_VERSION = -(2**63)  # bigint's least: a read of all an aggregate's events is one "after" it


class PostgresGroupRecorder(PostgresProcessRecorder):
    records_several_tracking_ids = True
    read_group: EventGroupRead | None = None  # concurrent reads share statements (the application sets it)

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        schema = Identifier(self.datastore.schema)
        tracking_table = SQL("{0}.{1}").format(schema, Identifier(self.tracking_table_name))
        if self.datastore.single_row_tracking:  # as eventsourcing's statement: an id not above the row's fails
            record_tracking = SQL(
                "INSERT INTO {0} AS t VALUES (tracking_names[i], tracking_ids[i]) "
                "ON CONFLICT (application_name) DO UPDATE SET notification_id = EXCLUDED.notification_id "
                "WHERE t.notification_id < EXCLUDED.notification_id;"
            ).format(tracking_table)
        else:
            record_tracking = SQL("INSERT INTO {0} VALUES (tracking_names[i], tracking_ids[i]);").format(
                tracking_table)
        self.sql_create_insert_function = SQL(
            "CREATE OR REPLACE FUNCTION {schema}.{function}("
            "events {schema}.{event}[], tracking_names text[], tracking_ids bigint[], synced boolean) "
            "RETURNS SETOF bigint LANGUAGE plpgsql AS $BODY$ "
            "BEGIN "
            "  IF NOT synced THEN PERFORM set_config('synchronous_commit', 'off', true); END IF; "
            "  FOR i IN 1 .. coalesce(array_length(tracking_names, 1), 0) LOOP "
            "    {record_tracking} "
            "    IF NOT FOUND THEN "
            "      RAISE EXCEPTION 'Failed to record tracking for % %', tracking_names[i], tracking_ids[i] "
            "        USING ERRCODE = 'unique_violation'; "
            "    END IF; "
            "  END LOOP; "
            "  IF coalesce(array_length(events, 1), 0) > 0 THEN "
            "    PERFORM set_config('lock_timeout', '{lock_timeout}s', true); "
            "    LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE; "
            "    NOTIFY {channel}; "
            "    RETURN QUERY INSERT INTO {schema}.{table} (originator_id, originator_version, topic, state) "
            "      SELECT originator_id, originator_version, topic, state FROM unnest(events) "
            "      RETURNING notification_id; "
            "  END IF; "
            "END; $BODY$"
        ).format(
            schema=schema,
            function=Identifier(INSERT_FUNCTION),
            event=Identifier(self.stored_event_type_name),
            record_tracking=record_tracking,
            lock_timeout=SQL(str(int(self.datastore.lock_timeout))),
            table=Identifier(self.events_table_name),
            channel=Identifier(self.channel_name),
        )
        self.sql_create_statements.append(self.sql_create_insert_function)
        self.sql_call_insert_function = SQL("SELECT n FROM {0}.{1}(%s, %s, %s, %s) AS n").format(
            schema, Identifier(INSERT_FUNCTION))
        # off: eventsourcing's insert_events (bench.pipeline's baseline); on until a store whose migration has not
        # created the function yet says otherwise
        self.has_insert_function = env_str("SFERA_STORE_SAVE_FUNCTION", "on") != "off"
        # the events of several aggregates after a version of each, in one statement (Repository.fast_forward_many,
        # group reads): each pair an index lookup (a LATERAL subquery with an ORDER BY is never flattened into a
        # join, so no plan hashes the pairs against a scan of the whole table, as the generic plan of a plain join
        # did while the table's statistics were new or old: 0.2-0.7 ms a read in bench.pipeline, growing with it)
        self.sql_select_events_after = SQL(
            "SELECT e.originator_id, e.originator_version, e.topic, e.state "
            "FROM unnest(%s::{2}[], %s::bigint[]) AS after(originator_id, originator_version) "
            "CROSS JOIN LATERAL (SELECT * FROM {0}.{1} AS e WHERE e.originator_id = after.originator_id "
            "AND e.originator_version > after.originator_version ORDER BY e.originator_version) AS e "
            "ORDER BY e.originator_id, e.originator_version"
        ).format(schema, Identifier(self.events_table_name), Identifier(self.datastore.originator_id_type))

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def select_events_after(self, versions: Sequence[tuple[Any, int]]) -> dict[Any, list[StoredEvent]]:
        """The events stored after ``version`` of each ``(originator_id, version)``, in one round trip (the
        primary key's index, one lookup an aggregate): {originator_id: its events in version order} (an aggregate
        with none is absent)."""
        found: dict[Any, list[StoredEvent]] = {}
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self.sql_select_events_after, ([i for i, _ in versions], [v for _, v in versions]),
                         prepare=True)
            for row in curs.fetchall():
                found.setdefault(row["originator_id"], []).append(StoredEvent(
                    originator_id=row["originator_id"], originator_version=row["originator_version"],
                    topic=row["topic"], state=bytes(row["state"])))
        return found

    def select_events(self, originator_id: Any, *, gt: int | None = None, lte: int | None = None,
                      desc: bool = False, limit: int | None = None) -> Sequence[StoredEvent]:
        """An aggregate's events (after ``gt``): with a ``read_group``, in a statement shared with the reads of
        other threads meanwhile (shared/store/group.py); a read of a range, backwards or limited, alone."""
        if self.read_group is None or lte is not None or desc or limit is not None:
            return super().select_events(originator_id, gt=gt, lte=lte, desc=desc, limit=limit)
        return self.read_group.select(originator_id, BEFORE_ANY_VERSION if gt is None else gt)

    def select_events_of(self, reads: list[tuple[Any, int]]) -> dict[Any, list[StoredEvent]]:
        """A read group's statement (shared/store/group.py): one aggregate's read alone is eventsourcing's own
        statement, as before there were groups; several, one ``select_events_after``."""
        if len(reads) > 1:
            return self.select_events_after(reads)
        originator_id, after = reads[0]
        events = super().select_events(originator_id, gt=None if after == BEFORE_ANY_VERSION else after)
        return {originator_id: list(events)} if events else {}

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        """The events and every tracking id (``tracking``, the group's ``also_tracking``) in one statement, its
        own transaction; their notification ids."""
        if not self.has_insert_function:
            return super().insert_events(stored_events, **kwargs)
        trackings = [t for t in (kwargs.get("tracking"), *kwargs.get(ALSO_TRACKING, ())) if t is not None]
        return self._call_insert_function(stored_events, trackings, synced=True)

    def insert_tracking_unsynced(self, tracking: Tracking) -> None:
        """``insert_tracking`` committed without waiting for its WAL flush (``synchronous_commit = off`` for
        this transaction only): visible to every other connection at once, lost only if the server itself
        crashes in the next few hundred ms. For a position that only saves work (the outbox relay's: a lost
        one republishes what consumers then find already processed), not for anything that must survive."""
        if self.has_insert_function:
            self._call_insert_function([], [tracking], synced=False)
            return
        with self.datastore.transaction(commit=True) as curs:
            curs.execute("SET LOCAL synchronous_commit TO OFF")
            self._insert_tracking(curs, tracking)

    def _call_insert_function(self, stored_events: Sequence[StoredEvent], trackings: Sequence[Tracking], *,
                              synced: bool) -> list[int] | None:
        events = [self.construct_pg_stored_event(e.originator_id, e.originator_version, e.topic, e.state)
                  for e in stored_events]
        # the ids always bigint (psycopg would send 1 as smallint, 70000 as integer: another prepared statement each)
        params = (events, [t.application_name for t in trackings], [Int8(t.notification_id) for t in trackings],
                  synced)
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            assert conn.autocommit  # the statement is its own transaction
            try:
                # prepared: PostgreSQL parses and plans it once per connection, not at every save (the producers'
                # and the consumers' saves, about 0.05 ms of the server's CPU each); the first use on a connection
                # of each of its three shapes (events, tracking ids, or both: an empty list is another type) is a
                # round trip more, once
                curs.execute(self.sql_call_insert_function, params, prepare=True)
            except psycopg.errors.UndefinedFunction:  # tables of a migration before it: eventsourcing's way
                self.has_insert_function = False
            else:
                return [row["n"] for row in curs.fetchall()]
        if not synced:
            self.insert_tracking_unsynced(trackings[0])
            return None
        return super().insert_events(stored_events, tracking=trackings[0] if trackings else None,
                                     **{ALSO_TRACKING: trackings[1:]})

    def _insert_events(self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
        for tracking in kwargs.get(ALSO_TRACKING, ()):
            self._insert_tracking(curs, tracking=tracking)
        super()._insert_events(curs, stored_events, **kwargs)


class SQLiteGroupRecorder(SQLiteProcessRecorder):
    records_several_tracking_ids = True

    def _insert_events(self, c: Any, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        returning = super()._insert_events(c, stored_events, **kwargs)
        for tracking in kwargs.get(ALSO_TRACKING, ()):
            self._insert_tracking(c, tracking)
        return returning
