"""Event stores: builds a service's eventsourcing Application for SQLite, PostgreSQL
or memory from the environment, and creates tables in one migration step.

One store per service: a SQLite file ``var/stores/<service>.sqlite`` locally, or
the PostgreSQL schema ``<service>`` of the shared database. Services run with
``CREATE_TABLE=n``; ``python -m shared.store.migrate`` creates the tables first,
so that several processes never race to create them.
"""

from __future__ import annotations

import functools
import os
import random
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from copy import deepcopy
from datetime import date
from typing import Any, TypeVar

from eventsourcing.application import AggregateNotFoundError, Application, Repository, project_aggregate
from eventsourcing.persistence import (
    EventStore,
    IntegrityError,
    JSONTranscoder,
    Notification,
    ProcessRecorder,
    Recording,
    Tracking,
    Transcoding,
)
from eventsourcing.utils import strtobool

from shared.config import Settings, env_int, env_str, settings
from shared.errors import NotFound, TooManyRequests
from shared.locks import HANDOVERS, ClusterLocks, KeyedLocks, NoClusterLocks, turn
from shared.observability import metrics
from shared.store.group import GROUP_RECORDERS, EventGroupCommit, EventGroupRead, can_group

PERSISTENCE_MODULES = {
    "memory": "eventsourcing.popo",
    "sqlite": "eventsourcing.sqlite",
    "postgres": "eventsourcing.postgres",
}


def prepare_for_eventlet() -> None:
    """psycopg detects gevent, not eventlet: its C wait function would block every
    green thread. Must run before psycopg is imported (docs/architecture.md, "Known pitfalls")."""
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
    # consumers' concurrent saves share transactions (group.py); off: the benchmark's baseline
    env["GROUP_COMMIT"] = "n" if env_str("SFERA_STORE_GROUP_COMMIT", "on") == "off" else "y"
    # commands' concurrent saves (no tracking id) share them too (group.py); off: the benchmark's baseline
    env["GROUP_SAVES"] = "n" if env_str("SFERA_STORE_GROUP_SAVES", "on") == "off" else "y"
    # concurrent reads of aggregates share statements (group.py, PostgreSQL); off: the benchmark's baseline
    env["GROUP_READ"] = "n" if env_str("SFERA_STORE_GROUP_READ", "on") == "off" else "y"
    # a command's cached aggregates read ahead in one select (ServiceApplication.prefetch); off: bench's baseline
    env["READ_AHEAD"] = "n" if env_str("SFERA_STORE_READ_AHEAD", "on") == "off" else "y"
    # a @query reads the cache's own aggregates, not a copy each; off: bench.history_page's baseline
    env["QUERY_CACHED"] = "n" if env_str("SFERA_STORE_QUERY_CACHED", "on") == "off" else "y"
    # The aggregates last read stay in memory (LRU), and a read brings a cached one up to date with the events stored
    # since (eventsourcing's fast-forward: another replica's writes included) instead of replaying all of them
    # (a chat's last page: up to 100 events a post, issue #17); each read gets its own deep copy (a ``@query``'s, the
    # cached object itself). 0: no cache.
    cache_size = env_int("SFERA_AGGREGATE_CACHE_SIZE", 1000)
    if cache_size > 0:
        env.update(AGGREGATE_CACHE_MAXSIZE=str(cache_size), AGGREGATE_CACHE_FASTFORWARD="y")  # never answered stale
    if config.persistence == "sqlite":
        stores = config.var_dir / "stores"
        stores.mkdir(parents=True, exist_ok=True)
        env.update(SQLITE_DBNAME=str(stores / f"{service}.sqlite"), SQLITE_LOCK_TIMEOUT="30")
        env["PROCESS_RECORDER_TOPIC"] = GROUP_RECORDERS["sqlite"]  # can record several tracking ids (group.py)
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
            PROCESS_RECORDER_TOPIC=GROUP_RECORDERS["postgres"],  # can record several tracking ids (group.py)
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


class StaleWrite(RuntimeError):
    """A programming error: a retried command saved an aggregate it did not read in
    the same attempt. eventsourcing empties an aggregate's pending events when it
    collects them, so saving that object again after a conflict writes nothing."""


class _Attempt:
    """What one attempt of a retried command has read (object identities)."""

    def __init__(self) -> None:
        self.read: dict[int, Any] = {}
        self.prefetched: dict[Any, Any] = {}  # aggregate id -> its copy read ahead (ServiceApplication.prefetch)


class _ReadRecordingRepository(Repository):
    """The application's repository; inside an attempt it notes every aggregate it hands out."""

    def __init__(self, attempts: threading.local, **kwargs: Any):
        super().__init__(**kwargs)
        self._attempts = attempts
        # A cached aggregate is brought up to date in place (``get``'s fast-forward, ``fast_forward_many``): one
        # reader at a time an aggregate, under this lock of its id (eventsourcing's own locks are private).
        self._forwarding = KeyedLocks()

    def get(self, aggregate_id: Any, **kwargs: Any) -> Any:
        attempt = getattr(self._attempts, "current", None)
        aggregate = attempt.prefetched.pop(aggregate_id, None) if attempt is not None and not kwargs else None
        if aggregate is None:
            with self._forwarding.hold(aggregate_id):
                if kwargs.get("projector_func", project_aggregate) is project_aggregate:
                    kwargs["projector_func"] = project_events
                aggregate = super().get(aggregate_id, **kwargs)
        if attempt is not None:
            attempt.read[id(aggregate)] = aggregate
        return aggregate

    def fast_forward_many(self, aggregate_ids: list[Any]) -> dict[Any, Any]:
        """Those of these aggregates the cache holds, each brought up to date with the events stored since it was
        cached, all in ONE select (a recorder with ``select_events_after``: PostgreSQL), instead of a round trip
        each (``get``'s fast-forward); each answered as its own copy, as ``get`` answers. The others (not cached,
        or no such recorder, or fewer than two cached) are not in the answer: ``get`` reads them as always.
        Each cached aggregate's lock of ``_forwarding`` is held meanwhile, as ``get`` holds it."""
        select = getattr(self.event_store.recorder, "select_events_after", None)
        if self.cache is None or not self.fastforward or select is None:
            return {}
        cached: dict[Any, Any] = {}
        for aggregate_id in dict.fromkeys(aggregate_ids):
            try:
                cached[aggregate_id] = self.cache.get(aggregate_id)
            except KeyError:
                continue
        if len(cached) < 2:
            return {}
        with ExitStack() as held:
            order = sorted(cached, key=str)  # locks taken in one order (``get`` holds one at a time)
            for aggregate_id in order:
                held.enter_context(self._forwarding.hold(aggregate_id))
            stored = select([(i, cached[i].version) for i in order])
            found = {}
            for aggregate_id in order:
                events = [self.event_store.mapper.to_domain_event(e) for e in stored.get(aggregate_id, ())]
                aggregate = project_events(cached[aggregate_id], events)
                if aggregate is not None:  # (discarded: ``get`` says so)
                    found[aggregate_id] = deepcopy(aggregate) if self.deepcopy_from_cache else aggregate
            return found


def project_events(aggregate: Any, domain_events: Iterable[Any]) -> Any:
    """eventsourcing's ``project_aggregate`` without its ``assert isinstance(event, CanMutateProtocol)`` an event:
    on Python 3.11 an isinstance of a runtime-checkable Protocol walks the protocol's members every time (with
    ``_check_fresh``'s, about 4 % of messaging's CPU a chat post, issue #17). The store's mapper makes only domain
    events, each with its ``mutate``."""
    for event in domain_events:
        aggregate = event.mutate(aggregate)
    return aggregate


def command(method: Callable[..., T]) -> Callable[..., T]:
    """An application method that is itself one read-decide-save command: the whole
    method runs again after a lost optimistic-concurrency race (``retrying``)."""

    @functools.wraps(method)
    def run(self: ServiceApplication, *args: Any, **kwargs: Any) -> T:
        return self.retrying(lambda: method(self, *args, **kwargs))

    return run


def query(method: Callable[..., T]) -> Callable[..., T]:
    """An application method that only reads: its ``find``s answer the aggregate cache's own objects, not a deep copy
    each (issue #17: a history page copied the cached chat and its full message pages, ~0.6 ms a page of 100), so
    it must change none of them, nor hand them to anyone who might. A command it runs still reads its own copies
    (inside a command's attempt ``find`` copies, as always)."""

    @functools.wraps(method)
    def run(self: ServiceApplication, *args: Any, **kwargs: Any) -> T:
        reading = self._queries
        depth = getattr(reading, "depth", 0)
        reading.depth = depth + 1
        try:
            return method(self, *args, **kwargs)
        finally:
            reading.depth = depth

    return run


def once_per_event(method: Callable[..., T]) -> Callable[..., T | bool]:
    """An application method that applies one integration event, called with the event's id as ``event_id=``
    and plain values (``<service>/handlers.py`` reads the event; the application knows no CloudEvent): an event
    already processed (a redelivery, or a copy another consumer applied) returns False at once, before the method
    reads or decides anything. ``process_once`` makes the same check only when it saves: by then a method may have
    refused a redelivered event (a ParentUnlinked whose link is gone raises NotYet) or run a command of its own.
    The method still saves through ``process_once(event_id, ...)``, which records the id with the effect."""

    @functools.wraps(method)
    def run(self: ServiceApplication, *args: Any, event_id: str, **kwargs: Any) -> T | bool:
        if self.already_processed(event_id):
            return False
        return method(self, *args, event_id=event_id, **kwargs)

    return run


class _TrackingEventStore(EventStore):
    """The application's event store: a ``save(*objs, processed=tracking)`` records ``tracking`` atomically with
    the new events. ``Application.save`` passes its keyword arguments through ``EventStore.put`` to the
    recorder's ``insert_events``, but names its own ``tracking`` argument there (None for a save), so the
    tracking of a processed event travels under another name. eventsourcing's own way, a ProcessingEvent
    handed to the private ``Application._record``, is what ``process_once`` used before (issue #16).

    With a ``group`` (a recorder that can: PostgreSQL, SQLite), such saves of concurrent workers share
    transactions (shared/store/group.py, issue #17)."""

    def __init__(self, *args: Any, group: EventGroupCommit | None = None, group_saves: bool = False,
                 **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.group = group
        self.group_saves = group_saves  # used with a group only (put)

    def put(self, domain_events: Any, *, processed: Tracking | None = None, **kwargs: Any) -> list[Recording]:
        if kwargs.get("tracking", 0) is None:
            del kwargs["tracking"]  # Application._record's own, None for a save
        if self.group is not None and not kwargs and (processed is not None or self.group_saves and domain_events):
            stored = [self.mapper.to_stored_event(e) for e in domain_events]
            ids = self.group.insert(stored, processed)
            if not ids:
                return []
            return [Recording(d, Notification(id=n_id, originator_id=s.originator_id,
                                              originator_version=s.originator_version, topic=s.topic, state=s.state))
                    for d, s, n_id in zip(domain_events, stored, ids, strict=True)]
        if processed is not None:
            kwargs["tracking"] = processed
        return super().put(domain_events, **kwargs)


class ServiceApplication(Application):
    """Base of every service's application.

    Its recorder is a *process* recorder, so a save can record a ``Tracking``
    atomically with new events: consumers use it to record an integration
    event's id together with its effect, and the outbox relay uses it to record
    its published position.
    """

    service: str | None = None  # the store's service, as make_application was given it (metrics' label)
    # Aggregates snapshotted every so many events (as ``snapshotting_intervals``, where they are not listed too) of the
    # object just saved, where eventsourcing reads the aggregate again at the snapshot's version (its snapshot before
    # and every event since: a round trip and a replay, inside the command's turn of its key, issue #17). Only for
    # classes whose state comes from their events alone (nothing set on them otherwise, nor kept derived): each is
    # listed where its class was checked so.
    snapshots_as_saved: dict[type, int] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.snapshots_as_saved:
            cls.is_snapshotting_enabled = True  # a snapshot store, whatever ``snapshotting_intervals`` lists

    def __init__(self, env: Any = None):
        self._attempts = threading.local()  # per thread (and per green thread under eventlet)
        self._queries = threading.local()  # how deep in ``@query`` methods this thread is
        super().__init__(env)
        self.locks = KeyedLocks()
        self.cluster_locks = self._cluster_locks()
        self.read_ahead = strtobool(self.env.get("READ_AHEAD", "y"))  # prefetch (SFERA_STORE_READ_AHEAD)
        self.query_cached = strtobool(self.env.get("QUERY_CACHED", "y"))  # @query (SFERA_STORE_QUERY_CACHED)
        self.lock_handovers = env_int("SFERA_CLUSTER_LOCK_HANDOVERS", HANDOVERS)  # turn(); 0: unlock every turn

    def _cluster_locks(self) -> ClusterLocks | NoClusterLocks:
        """On PostgreSQL, a keyed command's lock across the service's replicas (its store's database)."""
        if self.env.get("PERSISTENCE_MODULE") != PERSISTENCE_MODULES["postgres"]:
            return NoClusterLocks()
        return ClusterLocks({"host": self.env.get("POSTGRES_HOST"), "port": self.env.get("POSTGRES_PORT"),
                             "dbname": self.env.get("POSTGRES_DBNAME"), "user": self.env.get("POSTGRES_USER"),
                             "password": self.env.get("POSTGRES_PASSWORD")})

    def close(self) -> None:
        self.cluster_locks.close()
        super().close()

    def construct_repository(self) -> Repository:
        """eventsourcing's repository as ``Application.construct_repository`` builds it,
        one that also notes what a retried command reads."""
        cache_maxsize = self.env.get(self.AGGREGATE_CACHE_MAXSIZE)
        return _ReadRecordingRepository(
            self._attempts,
            event_store=self.events,
            snapshot_store=self.snapshots,
            cache_maxsize=int(cache_maxsize) if cache_maxsize else None,
            fastforward=strtobool(self.env.get(self.AGGREGATE_CACHE_FASTFORWARD, "y")),
            fastforward_skipping=strtobool(self.env.get(self.AGGREGATE_CACHE_FASTFORWARD_SKIPPING, "n")),
            deepcopy_from_cache=strtobool(self.env.get(self.DEEPCOPY_FROM_AGGREGATE_CACHE, "y")),
        )

    def construct_event_store(self) -> EventStore:
        grouping = can_group(self.recorder) and strtobool(self.env.get("GROUP_COMMIT", "y"))
        group = EventGroupCommit(self.recorder, lambda: self.service or self.name) if grouping else None
        if hasattr(self.recorder, "read_group") and strtobool(self.env.get("GROUP_READ", "y")):
            self.recorder.read_group = EventGroupRead(self.recorder.select_events_of,
                                                      lambda: self.service or self.name)
        return _TrackingEventStore(mapper=self.mapper, recorder=self.recorder, group=group,
                                   group_saves=strtobool(self.env.get("GROUP_SAVES", "y")))

    def find(self, cls: type[T], aggregate_id: uuid.UUID) -> T | None:
        """The aggregate, if it exists and is a ``cls``: a copy of its cached state, or in a ``@query`` (outside a
        command's attempt) the cached object itself."""
        reading = self.query_cached and getattr(self._queries, "depth", 0) and \
            getattr(self._attempts, "current", None) is None
        try:
            found = self.repository.get(aggregate_id, deepcopy_from_cache=False) if reading else \
                self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        return found if isinstance(found, cls) else None

    def prefetch(self, *aggregate_ids: Any) -> None:
        """Inside a retried command's attempt: read these aggregates ahead, those the cache holds in one select of
        what was stored since (``fast_forward_many``; a command reading its chat, its page and several read marks
        took a round trip each, issue #17); the attempt's next ``find`` of each answers that copy, once. Outside an
        attempt, or for aggregates not cached, nothing: ``find`` reads them as always."""
        attempt: _Attempt | None = getattr(self._attempts, "current", None)
        if attempt is None or not self.read_ahead:
            return
        repository = self.repository
        if isinstance(repository, _ReadRecordingRepository):
            attempt.prefetched.update(repository.fast_forward_many(list(aggregate_ids)))

    def has_read_ahead(self, aggregate_id: Any) -> bool:
        """Whether the attempt under way holds a copy of this aggregate read ahead (``prefetch``): its ``find``
        then answers at once, without a round trip."""
        attempt: _Attempt | None = getattr(self._attempts, "current", None)
        return attempt is not None and aggregate_id in attempt.prefetched

    def get_as(self, cls: type[T], aggregate_id: uuid.UUID, code: str, message: str) -> T:
        found = self.find(cls, aggregate_id)
        if found is None:
            raise NotFound(code, message)
        return found

    def retrying(self, command: Callable[[], T], key: Any = None, attempts: int = 20) -> T:
        """Run a whole command -- read, decide, save -- and run it again from the start
        when a concurrent save won the race (optimistic concurrency), backing off with
        jitter; with a ``key``, commands on the same key take turns, inside this process and (PostgreSQL)
        across the service's replicas (``ClusterLocks``), so they seldom race at all.

        The command must read every aggregate it saves inside itself: a save of an
        object read before the attempt raises ``StaleWrite`` at once (on the first
        attempt, conflict or not), so ``retrying(lambda: self.save(x))`` cannot be
        written. A command run inside another retried command is part of that one
        attempt: the outer command is what runs again."""
        if key is not None:
            with turn(self.locks, self.cluster_locks, key, f"{self.service or self.name}:{key!r}",
                      self.lock_handovers):
                return self.retrying(command, None, attempts)
        if getattr(self._attempts, "current", None) is not None:
            return command()
        for attempt in range(attempts):
            try:
                with self._attempt():
                    return command()
            except IntegrityError:
                if attempt == attempts - 1:
                    metrics.command_retries.labels(self.service or self.name, "busy").inc()
                    raise TooManyRequests("request.busy", "Too many changes at once; try again in a second.",
                                          {"retry_after": 1}) from None  # the gateway's Retry-After
                metrics.command_retries.labels(self.service or self.name, "retried").inc()
                time.sleep(random.uniform(0, min(0.005 * 2**attempt, 0.25)))
        raise AssertionError("unreachable")

    @contextmanager
    def _attempt(self) -> Iterator[_Attempt]:
        attempt = self._attempts.current = _Attempt()
        try:
            yield attempt
        finally:
            self._attempts.current = None

    def _check_fresh(self, objs: tuple[Any, ...]) -> None:
        """Inside an attempt, each saved aggregate was read in it, or is new (it still
        holds its creation event); anything else is an object from before the attempt."""
        attempt: _Attempt | None = getattr(self._attempts, "current", None)
        if attempt is None:
            return
        for obj in objs:
            if obj is None or not hasattr(obj, "collect_events") or id(obj) in attempt.read:
                continue
            pending = getattr(obj, "pending_events", None) or []
            if pending and pending[0].originator_version == 1:
                continue
            raise StaleWrite(
                f"{type(obj).__name__} {getattr(obj, 'id', '?')} was saved by a retried command that did not read "
                "it: read it inside the command (a retry re-reads, re-decides and saves).")

    def save(self, *objs: Any, **kwargs: Any) -> Any:
        self._check_fresh(objs)
        crossed = self._snapshots_due(objs)
        recordings = super().save(*objs, **kwargs)
        for aggregate, version in crossed:
            if version == aggregate.version:  # the object saved is that version: its state is the snapshot's
                snapshot_class = getattr(type(aggregate), "Snapshot", type(self).snapshot_class)
                self.snapshots.put([snapshot_class.take(aggregate)])
            else:  # crossed in the middle of this save: read at that version, as eventsourcing does
                self.take_snapshot(aggregate.id, version=version)
        return recordings

    def _snapshots_due(self, objs: tuple[Any, ...]) -> list[tuple[Any, int]]:
        """The versions of ``snapshots_as_saved`` aggregates about to be saved that are due a snapshot."""
        due = []
        for obj in objs:
            interval = self.snapshots_as_saved.get(type(obj))
            if interval:
                due += [(obj, e.originator_version) for e in obj.pending_events if e.originator_version % interval == 0]
        return due

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
        before (a redelivery, or a concurrent copy that won the race): its record
        is already there, so the save fails, and only then is it read (no read of
        its own before every save: a round trip per event, issue #17)."""
        try:  # an ordinary save (snapshots, cache, notifications) that also records the event's id
            self.save(*objs, processed=Tracking(self._processed_key(event_id), 1))
        except IntegrityError:
            if self.already_processed(event_id):
                return False
            raise
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
    app = cls(env=store_env(service, create_table=create_table, config=config), **kwargs)
    app.service = service
    return app
