"""eventsourcing's process recorders that record several tracking ids in one insert (group commit,
shared/store/group.py); chosen with ``PROCESS_RECORDER_TOPIC`` (shared.store.store_env). Imports psycopg:
imported by eventsourcing's factory only, never by ``shared.store`` itself (docs/architecture.md, eventlet)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import StoredEvent, Tracking
from eventsourcing.postgres import PostgresProcessRecorder
from eventsourcing.sqlite import SQLiteProcessRecorder

from shared.store.group import ALSO_TRACKING


class PostgresGroupRecorder(PostgresProcessRecorder):
    records_several_tracking_ids = True

    def insert_tracking_unsynced(self, tracking: Tracking) -> None:
        """``insert_tracking`` committed without waiting for its WAL flush (``synchronous_commit = off`` for
        this transaction only): visible to every other connection at once, lost only if the server itself
        crashes in the next few hundred ms. For a position that only saves work (the outbox relay's: a lost
        one republishes what consumers then find already processed), not for anything that must survive."""
        with self.datastore.transaction(commit=True) as curs:
            curs.execute("SET LOCAL synchronous_commit TO OFF")
            self._insert_tracking(curs, tracking)

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
