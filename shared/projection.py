"""Read models: tables kept by a projection of a service's notification log (issue #17).

A ``Projection`` names its tables, creates them (``create_tables``) and applies the domain events it
``@handles`` to them. A ``ReadModel`` runs one projection over one application's store:

- The tables live in the service's own database -- its SQLite file, its PostgreSQL schema; with
  ``PERSISTENCE=memory`` an in-process SQLite ``:memory:`` database fed the same way -- beside a position
  row (``projections``: name, version, position).
- ``catch_up()`` reads the notification log after the position and applies each event the projection
  handles IN THE SAME TRANSACTION as the new position, a batch at a time: a batch is applied exactly once,
  whatever kills the process or the handler mid-way (the transaction rolls back, the next catch-up applies
  the batch again from the old position). Concurrent catch-ups take turns on the position (PostgreSQL
  ``SELECT ... FOR UPDATE``, SQLite ``BEGIN IMMEDIATE``); the one that waited finds the position moved on.
- Reading one's own writes: a query reads through ``reading()``, which first asks the store for its last
  notification id (one cheap read) and catches up only when that is past the position this process last
  saw. A write committed before the query is therefore in what it reads, whichever replica wrote it. No
  background thread is needed.
- A projection's ``version`` is stored with its position: a process that finds another version (a deploy
  that changed the tables or what they hold) drops and rebuilds the tables from the start of the log.
  ``python -m shared.projection rebuild <service>`` rebuilds them from scratch by hand (README).

Notifications are read inside the catch-up's own transaction (its one connection) with the recorder's own
table: a catch-up waiting for the position never holds a second pooled connection.
"""

from __future__ import annotations

import hashlib
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar, Generic, TypeVar

from eventsourcing.application import Application
from eventsourcing.persistence import Notification
from eventsourcing.utils import get_topic

POSITIONS = "projections"
BATCH = 500
INSERT_ROWS = 100  # rows a multi-row INSERT of Db.insert_later at most


def text_or_none(value: Any) -> str | None:
    """An event's value (an id, a number) as a column's text; None stays NULL."""
    return None if value is None else str(value)


def iso_or_none(value: Any) -> str | None:
    """A moment as a column's text (a datetime's ISO form; text as it is); None stays NULL."""
    return None if value is None else value.isoformat() if hasattr(value, "isoformat") else str(value)


def handles(*event_classes: type) -> Callable[[Callable], Callable]:
    """Marks a projection method as the handler of these domain event classes: ``method(db, event)``."""

    def mark(method: Callable) -> Callable:
        method._projection_handles = event_classes  # type: ignore[attr-defined]
        return method

    return mark


class Db:
    """One transaction of a read model's database. SQL is written once for both engines: ``?``
    placeholders and ``{table}`` names (the projection's short names; PostgreSQL's are schema-qualified;
    a literal brace is doubled, ``'{{}}'``, as in ``str.format``)."""

    def __init__(self, cursor: Any, dialect: str, schema: str | None, tables: dict[str, str]):
        self.cursor = cursor
        self.dialect = dialect
        self.schema = schema
        self._tables = tables
        self._statements: dict[str, str] = {}
        self._latest: dict[Any, tuple[Any, str, tuple]] = {}  # key -> (order, text, params): execute_latest
        self._rows: dict[tuple[str, str, str], list[tuple]] = {}  # (head, row, tail) -> each row's params

    @property
    def postgres(self) -> bool:
        return self.dialect == "postgres"

    def sql(self, text: str) -> str:
        statement = self._statements.get(text)
        if statement is None:
            statement = text.format(**self._tables)
            if self.postgres:
                statement = statement.replace("?", "%s")
            self._statements[text] = statement
        return statement

    def execute(self, text: str, params: Sequence[Any] = ()) -> None:
        self.flush()
        self._execute(text, params)

    def _execute(self, text: str, params: Sequence[Any]) -> None:
        if self.postgres:  # never server-side prepared: a pipelined transaction that rolls back would lose them
            self.cursor.execute(self.sql(text), tuple(params), prepare=False)
        else:
            self.cursor.execute(self.sql(text), tuple(params))

    def execute_latest(self, key: Any, order: Any, text: str, params: Sequence[Any] = ()) -> None:
        """A write that the next one of the same ``key`` with a greater or equal ``order`` makes moot (a chat's last
        message, set only when its seq is above the stored one; a read mark, moved only forward): kept back, and
        only the greatest of a key runs, when the transaction next runs anything else (any statement, a read) or
        the batch ends (``flush``). A catch-up of a burst into one chat then updates the chat's row once, not once a
        post (issue #17). Only for writes whose outcome is that of the greatest alone, whatever ran in between of
        the same key."""
        kept = self._latest.get(key)
        if kept is None or order >= kept[0]:
            self._latest[key] = (order, text, tuple(params))

    def insert_later(self, head: str, row: str, tail: str, params: Sequence[Any]) -> None:
        """A row of ``head`` + ``row`` + ``tail`` (an INSERT's start, one row's ``(?, ...)``, its ON CONFLICT): kept
        back with the others of the same statement and written with them in one multi-row INSERT, when the
        transaction next runs anything else (any statement, a read) or the batch ends (``flush``): a catch-up of
        a burst of posts inserts their rows in one statement, not one a post (issue #17). Rows only (nothing read
        back from the insert), and only where the batch's order between them and other writes does not matter
        beyond the flush at the next other statement."""
        self._rows.setdefault((head, row, tail), []).append(tuple(params))

    def flush(self) -> None:
        """Runs the writes ``execute_latest`` and ``insert_later`` kept back: the rows first, then the latest of
        each key in the order the keys first came."""
        if self._rows:
            rows, self._rows = self._rows, {}
            for (head, row, tail), each in rows.items():
                for start in range(0, len(each), INSERT_ROWS):
                    chunk = each[start:start + INSERT_ROWS]
                    self._execute(head + ", ".join([row] * len(chunk)) + tail, [p for ps in chunk for p in ps])
        if self._latest:
            latest, self._latest = self._latest, {}
            for _, text, params in latest.values():
                self._execute(text, params)

    def rows(self, text: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        self.flush()
        if self.postgres:  # its own cursor: in a pipeline, a cursor's results are those of its first statement
            with self.cursor.connection.cursor() as cursor:
                cursor.execute(self.sql(text), tuple(params), prepare=False)
                return [dict(row) for row in cursor.fetchall()]
        self._execute(text, params)
        return [dict(row) for row in self.cursor.fetchall()]

    def one(self, text: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        found = self.rows(text, params)
        return found[0] if found else None


class Projection:
    """Tables kept from domain events. ``name`` keys its position; bump ``version`` when the tables or what
    they hold change (every process then rebuilds them from the log); ``tables`` are the short names its SQL
    uses (``{members}``), ``rm_<name>`` in the database, dropped on a rebuild."""

    name: ClassVar[str]
    version: ClassVar[int] = 1
    tables: ClassVar[tuple[str, ...]] = ()
    _handlers: ClassVar[dict[type, str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        found: dict[type, str] = {}
        for klass in reversed(cls.__mro__):
            for attr, value in vars(klass).items():
                for event_class in getattr(value, "_projection_handles", ()):
                    found[event_class] = attr
        cls._handlers = found

    def topics(self) -> list[str]:
        return sorted(get_topic(c) for c in self._handlers)

    def create_tables(self, db: Db) -> None:
        raise NotImplementedError

    def apply(self, db: Db, domain_event: Any) -> None:
        attr = self._handlers.get(type(domain_event))
        if attr is not None:
            getattr(self, attr)(db, domain_event)


P = TypeVar("P", bound=Projection)


class _Backend:
    dialect: str
    schema: str | None = None

    def transaction(self, write: bool) -> Any:  # a context manager yielding a DB-API cursor
        raise NotImplementedError

    @contextmanager
    def batch(self, cursor: Any) -> Iterator[None]:
        """A batch of writes inside a transaction: sent without waiting for each (PostgreSQL), else as they come."""
        yield

    def notifications(self, cursor: Any, after: int, upto: int, topics: list[str], limit: int) -> list[Notification]:
        raise NotImplementedError

    def lock_schema(self, cursor: Any, name: str) -> None:
        """Serialises creating and dropping tables between processes."""

    def close(self) -> None:
        pass


class _SQLite(_Backend):
    """One connection to the service's SQLite file (or a ``:memory:`` database), taken in turns."""

    dialect = "sqlite"

    def __init__(self, database: str, timeout: float, recorder: Any = None):
        self.connection = sqlite3.connect(database, uri=database.startswith("file:"), check_same_thread=False,
                                          isolation_level=None, timeout=timeout)
        self.connection.row_factory = sqlite3.Row
        self.lock = threading.RLock()
        self.recorder = recorder  # the store's recorder when the events are in this same file

    @contextmanager
    def transaction(self, write: bool) -> Iterator[Any]:
        with self.lock:
            cursor = self.connection.cursor()
            cursor.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield cursor
            except BaseException:
                self.connection.rollback()
                raise
            else:
                self.connection.commit() if write else self.connection.rollback()
            finally:
                cursor.close()

    def notifications(self, cursor: Any, after: int, upto: int, topics: list[str], limit: int) -> list[Notification]:
        table = self.recorder.events_table_name
        marks = ",".join("?" * len(topics))
        cursor.execute(f"SELECT rowid, originator_id, originator_version, topic, state FROM {table} "  # noqa: S608
                       f"WHERE rowid > ? AND rowid <= ? AND topic IN ({marks}) ORDER BY rowid LIMIT ?",
                       (after, upto, *topics, limit))
        return [Notification(id=r[0], originator_id=self.recorder.convert_originator_id(r[1]),
                             originator_version=r[2], topic=r[3], state=r[4]) for r in cursor.fetchall()]

    def close(self) -> None:
        with self.lock:
            self.connection.close()


class _Memory(_SQLite):
    """``PERSISTENCE=memory``: the tables in an in-process SQLite database, the events from the POPO recorder."""

    def __init__(self, recorder: Any):
        super().__init__(":memory:", 5.0)
        self.events = recorder

    def notifications(self, cursor: Any, after: int, upto: int, topics: list[str], limit: int) -> list[Notification]:
        return list(self.events.select_notifications(start=after + 1, stop=upto, limit=limit, topics=topics))


class _Postgres(_Backend):
    """The service's PostgreSQL schema through the store's own connection pool."""

    dialect = "postgres"

    def __init__(self, recorder: Any):
        self.recorder = recorder
        self.datastore = recorder.datastore
        self.schema = self.datastore.schema

    @contextmanager
    def transaction(self, write: bool) -> Iterator[Any]:
        with self.datastore.transaction(commit=write) as cursor:
            yield cursor

    @contextmanager
    def batch(self, cursor: Any) -> Iterator[None]:
        """A catch-up's writes go out in a pipeline, without a round trip each: rows only, never a table dropped or
        made. psycopg forgets the connection's prepared statements (eventsourcing prepares its own) when it reads a
        DROP's result, and deallocates them on the server at the end of the next statement it runs. Pipelined, that
        result could be read only at the pipeline's end (a busy server answers late): the next statement on the
        pooled connection, an aggregate's select, was then prepared and deallocated at once, and its next use failed
        with "prepared statement _pg3_N does not exist". Unpipelined, the DROP's own statement deallocates them."""
        with cursor.connection.pipeline():
            yield

    def notifications(self, cursor: Any, after: int, upto: int, topics: list[str], limit: int) -> list[Notification]:
        with cursor.connection.cursor() as reading:  # its own results, whatever the pipeline holds
            return self._notifications(reading, after, upto, topics, limit)

    def _notifications(self, cursor: Any, after: int, upto: int, topics: list[str], limit: int
                       ) -> list[Notification]:
        cursor.execute(f'SELECT notification_id, originator_id, originator_version, topic, state '  # noqa: S608
                       f'FROM "{self.schema}"."{self.recorder.events_table_name}" '
                       "WHERE notification_id > %s AND notification_id <= %s AND topic = ANY(%s) "
                       "ORDER BY notification_id LIMIT %s", (after, upto, topics, limit), prepare=False)
        return [Notification(id=r["notification_id"], originator_id=r["originator_id"],
                             originator_version=r["originator_version"], topic=r["topic"], state=bytes(r["state"]))
                for r in cursor.fetchall()]

    def lock_schema(self, cursor: Any, name: str) -> None:
        key = int.from_bytes(hashlib.sha256(f"sfera-projection:{self.schema}:{name}".encode()).digest()[:8], "big",
                             signed=True)
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", (key,), prepare=False)


def _backend_for(app: Application) -> _Backend:
    """The store's own database, known by the recorder's eventsourcing class: a recorder of our own deriving from
    one (shared.store.recorders) is that store too, never taken for a memory store."""
    recorder = app.recorder
    modules = [klass.__module__ for klass in type(recorder).__mro__]
    if any(m.startswith("eventsourcing.postgres") for m in modules):
        return _Postgres(recorder)
    if any(m.startswith("eventsourcing.sqlite") for m in modules):
        pool = recorder.datastore.pool  # type: ignore[attr-defined]
        return _SQLite(pool.db_name, float(pool.lock_timeout or 30), recorder)
    return _Memory(recorder)


class ReadModel(Generic[P]):
    """One projection kept over one application's notification log (see the module's docstring)."""

    def __init__(self, app: Application, projection: P, *, batch_size: int = BATCH):
        self.app = app
        self.projection = projection
        self.batch_size = batch_size
        self.backend = _backend_for(app)
        schema = self.backend.schema
        names = {t: f"rm_{t}" for t in projection.tables}
        names["positions"] = POSITIONS
        self.tables = {t: f'"{schema}".{n}' if schema else n for t, n in names.items()}
        self.topics = projection.topics()
        self._seen = -1  # the position this process last saw: at or behind the stored one
        self._ready = False

    @property
    def name(self) -> str:
        return self.projection.name

    def _db(self, cursor: Any) -> Db:
        return Db(cursor, self.backend.dialect, self.backend.schema, self.tables)

    @contextmanager
    def transaction(self, write: bool = False) -> Iterator[Db]:
        with self.backend.transaction(write) as cursor:
            db = self._db(cursor)
            yield db
            db.flush()  # the writes kept back (execute_latest, insert_later) are this transaction's too

    # -- tables and position --------------------------------------------------------------------------

    def ensure(self) -> None:
        """The position row and the projection's tables, of this version (dropped and made again from
        position 0 when another version built them)."""
        if self._ready:
            return
        with self.transaction(write=True) as db:
            self.backend.lock_schema(db.cursor, self.name)
            db.execute("CREATE TABLE IF NOT EXISTS {positions} (name TEXT PRIMARY KEY, version INTEGER NOT NULL, "
                       "position BIGINT NOT NULL)")
            row = db.one("SELECT version FROM {positions} WHERE name = ?", (self.name,))
            if row is None or row["version"] != self.projection.version:
                self._reset(db)
        self._ready = True

    def _reset(self, db: Db) -> None:
        for table in self.projection.tables:
            db.execute(f"DROP TABLE IF EXISTS {{{table}}}")
        self.projection.create_tables(db)
        db.execute("INSERT INTO {positions} (name, version, position) VALUES (?, ?, 0) ON CONFLICT (name) "
                   "DO UPDATE SET version = excluded.version, position = 0", (self.name, self.projection.version))
        self._seen = -1

    def position(self) -> int:
        self.ensure()
        with self.transaction() as db:
            row = db.one("SELECT position FROM {positions} WHERE name = ?", (self.name,))
        return int(row["position"]) if row else 0

    def head(self) -> int:
        """The store's last notification id: the one cheap read before every query."""
        return self.app.recorder.max_notification_id() or 0  # type: ignore[attr-defined]

    # -- keeping up --------------------------------------------------------------------------------------

    def catch_up(self, upto: int | None = None) -> int:
        """Apply what the log holds after the position, up to ``upto`` (the head now); returns how many
        notifications the position moved over."""
        self.ensure()
        head = self.head() if upto is None else upto
        start = max(self._seen, 0)
        while self._seen < head:
            with self.transaction(write=True) as db, self.backend.batch(db.cursor):
                position, reached = self._apply(db, head)
            if reached < 0:  # the position row is gone (tables dropped by hand): make them again
                self._ready = False
                self.ensure()
                continue
            start = min(start, position)
            self._seen = max(self._seen, reached)
        return max(0, self._seen - start)

    def _apply(self, db: Db, head: int) -> tuple[int, int]:
        """Inside one transaction: lock the position, apply the next batch up to ``head``, move the
        position; returns (position before, position after), (-1, -1) when there is no position row."""
        lock = " FOR UPDATE" if db.postgres else ""  # SQLite: BEGIN IMMEDIATE holds the database already
        row = db.one("SELECT position FROM {positions} WHERE name = ?" + lock, (self.name,))
        if row is None:
            return -1, -1
        position = int(row["position"])
        if position >= head:
            return position, position
        batch = self.backend.notifications(db.cursor, position, head, self.topics, self.batch_size)
        for notification in batch:
            self.projection.apply(db, self.app.mapper.to_domain_event(notification))
        reached = batch[-1].id if len(batch) == self.batch_size else head
        db.execute("UPDATE {positions} SET position = ? WHERE name = ?", (reached, self.name))
        return position, reached

    @contextmanager
    def reading(self) -> Iterator[Db]:
        """A read of the tables that sees every event committed before it began."""
        self.catch_up()
        with self.transaction() as db:
            yield db

    def rebuild(self) -> int:
        """Drop the tables, make them again and apply the whole log, in one transaction (a reader meanwhile
        sees the old tables, or waits for the new ones); returns the position reached."""
        self.ensure()
        head = self.head()
        with self.transaction(write=True) as db:
            self.backend.lock_schema(db.cursor, self.name)
            self._reset(db)  # tables dropped and made outside a batch (_Postgres.batch)
            reached = 0
            with self.backend.batch(db.cursor):
                while reached < head:
                    reached = self._apply(db, head)[1]
        self._seen = reached
        return reached

    def close(self) -> None:
        self.backend.close()


def main(argv: list[str]) -> int:
    """``python -m shared.projection rebuild <service> [<read model>]``: every read model of the service (or the one
    named), from scratch."""
    from shared.observability.logging import configure_logging
    from shared.platform import SERVICES, load
    from shared.store import make_application

    if len(argv) not in (2, 3) or argv[0] != "rebuild" or argv[1] not in SERVICES:
        print(f"usage: python -m shared.projection rebuild <{'|'.join(SERVICES)}> [<read model>]", file=sys.stderr)
        return 2
    configure_logging("projection")
    app = make_application(load(SERVICES[argv[1]].application), argv[1])
    try:
        models: list[ReadModel] = [m for m in getattr(app, "read_models", ()) if argv[2:] in ([], [m.name])]
        if not models:
            print(f"{argv[1]} keeps no read models" + (f" named {argv[2]}" if argv[2:] else ""), file=sys.stderr)
            return 1
        for model in models:
            position = model.rebuild()
            print(f"{argv[1]}: read model {model.name} v{model.projection.version} rebuilt up to notification "
                  f"{position}")
    finally:
        app.close()
    return 0


def rebuild_command(argv: list[str], command: str, service: str, model: str | None = None) -> int:
    """A service's own ``python -m <command> rebuild``: its read models (or the one named ``model``) from scratch,
    as ``python -m shared.projection rebuild <service> [<model>]``."""
    if argv != ["rebuild"]:
        print(f"usage: python -m {command} rebuild", file=sys.stderr)
        return 2
    return main(["rebuild", service, *([model] if model else [])])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
