"""Event stores: builds a service's eventsourcing Application for SQLite, PostgreSQL
or memory from the environment, and creates tables in one migration step.

One store per service: a SQLite file ``var/stores/<service>.sqlite`` locally, or
the PostgreSQL schema ``<service>`` of the shared database. Services run with
``CREATE_TABLE=n``; ``python -m shared.store.migrate`` creates the tables first,
so that several processes never race to create them.
"""

from __future__ import annotations

import os
import random
import sys
import time
import uuid
from collections.abc import Callable
from datetime import date
from typing import Any, TypeVar

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.persistence import IntegrityError, JSONTranscoder, ProcessRecorder, Tracking, Transcoding

from shared.config import Settings, settings
from shared.errors import NotFound, TooManyRequests
from shared.locks import KeyedLocks

PERSISTENCE_MODULES = {
    "memory": "eventsourcing.popo",
    "sqlite": "eventsourcing.sqlite",
    "postgres": "eventsourcing.postgres",
}


def prepare_for_eventlet() -> None:
    """psycopg detects gevent, not eventlet: its C wait function would block every
    green thread. Must run before psycopg is imported (ARCHITECTURE.md, pitfalls)."""
    if "psycopg" in sys.modules and os.environ.get("PSYCOPG_WAIT_FUNC") != "wait_select":
        raise RuntimeError("psycopg was imported before PSYCOPG_WAIT_FUNC was set")
    os.environ["PSYCOPG_WAIT_FUNC"] = "wait_select"


def store_env(service: str, *, create_table: bool = False, config: Settings | None = None) -> dict[str, str]:
    """The eventsourcing settings of one service's store."""
    config = config or settings()
    try:
        module = PERSISTENCE_MODULES[config.persistence]
    except KeyError:
        raise ValueError(
            f"PERSISTENCE={config.persistence!r}: expected one of {', '.join(PERSISTENCE_MODULES)}"
        ) from None
    env = {"PERSISTENCE_MODULE": module, "CREATE_TABLE": "y" if create_table else "n"}
    if config.persistence == "sqlite":
        stores = config.var_dir / "stores"
        stores.mkdir(parents=True, exist_ok=True)
        env.update(SQLITE_DBNAME=str(stores / f"{service}.sqlite"), SQLITE_LOCK_TIMEOUT="30")
    elif config.persistence == "postgres":
        env.update(
            POSTGRES_DBNAME=config.postgres_db,
            POSTGRES_HOST=config.postgres_host,
            POSTGRES_PORT=str(config.postgres_port),
            POSTGRES_USER=config.postgres_user,
            POSTGRES_PASSWORD=config.postgres_password,
            POSTGRES_SCHEMA=service,
            POSTGRES_POOL_SIZE="4",
            POSTGRES_MAX_OVERFLOW="8",
            POSTGRES_CONN_MAX_AGE="300",
        )
    elif config.persistence == "memory":
        env["CREATE_TABLE"] = "y"  # nothing to race for in one process's memory
    return env


class DateAsISO(Transcoding):
    """Calendar dates (birth dates, lesson days) in stored events."""

    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


T = TypeVar("T")


class ServiceApplication(Application):
    """Base of every service's application.

    Its recorder is a *process* recorder, so a save can record a ``Tracking``
    atomically with new events: consumers use it to record an integration
    event's id together with its effect, and the outbox relay uses it to record
    its published position.
    """

    def __init__(self, env: Any = None):
        super().__init__(env)
        self.locks = KeyedLocks()

    def find(self, cls: type[T], aggregate_id: uuid.UUID) -> T | None:
        """The aggregate, if it exists and is a ``cls``."""
        try:
            found = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        return found if isinstance(found, cls) else None

    def get_as(self, cls: type[T], aggregate_id: uuid.UUID, code: str, message: str) -> T:
        found = self.find(cls, aggregate_id)
        if found is None:
            raise NotFound(code, message)
        return found

    def retrying(self, command: Callable[[], T], key: Any = None, attempts: int = 20) -> T:
        """Run a read-decide-save command again when a concurrent save won the race
        (optimistic concurrency), backing off with jitter; with a ``key``, commands
        on the same key take turns inside this process first."""
        if key is not None:
            with self.locks.hold(key):
                return self.retrying(command, None, attempts)
        for attempt in range(attempts):
            try:
                return command()
            except IntegrityError:
                if attempt == attempts - 1:
                    raise TooManyRequests("request.busy", "Too many changes at once; try again.") from None
                time.sleep(random.uniform(0, min(0.005 * 2**attempt, 0.25)))
        raise AssertionError("unreachable")

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())

    def construct_recorder(self) -> ProcessRecorder:  # type: ignore[override]
        return self.factory.process_recorder()

    @property
    def process_recorder(self) -> ProcessRecorder:
        return self.recorder  # type: ignore[return-value]

    @staticmethod
    def _processed_key(event_id: str) -> str:
        return f"evt:{event_id}"

    def already_processed(self, event_id: str) -> bool:
        return self.process_recorder.max_tracking_id(self._processed_key(event_id)) is not None

    def process_once(self, event_id: str, *objs: Any) -> bool:
        """Save ``objs``' new events together with a record of ``event_id``, in one
        transaction. Returns False, saving nothing, when the event was processed
        before (a redelivery, or a concurrent copy that won the race)."""
        tracking = Tracking(self._processed_key(event_id), 1)
        if self.already_processed(event_id):
            return False
        processing = ProcessingEvent(tracking=tracking)
        processing.collect_events(*objs)
        try:
            recordings = self._record(processing)
        except IntegrityError:
            if self.already_processed(event_id):
                return False
            raise
        self._take_snapshots(processing)
        self._notify(recordings)
        return True


TApp = TypeVar("TApp", bound=ServiceApplication)


def ensure_postgres_schema(schema: str, config: Settings) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(
        host=config.postgres_host,
        port=config.postgres_port,
        dbname=config.postgres_db,
        user=config.postgres_user,
        password=config.postgres_password,
        autocommit=True,
    ) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))


def make_application(cls: type[TApp], service: str, *, create_table: bool = False, config: Settings | None = None,
                     **kwargs: Any) -> TApp:
    """Build ``cls`` configured for ``service``'s store; ``create_table`` is the
    migration step (it also creates the service's PostgreSQL schema)."""
    config = config or settings()
    if create_table and config.persistence == "postgres":
        ensure_postgres_schema(service, config)
    return cls(env=store_env(service, create_table=create_table, config=config), **kwargs)
