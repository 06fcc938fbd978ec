"""Test support for optimistic concurrency: make commands on several application
instances (replicas on one store) race for real, deterministically."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from shared.locks import NoClusterLocks
from shared.store import ServiceApplication


class ReadsAtAVersion:
    """Counts an application's reads of an aggregate at a given version (eventsourcing's ``take_snapshot``: from the
    snapshot store up to that version; a first read or the cache's fast-forward asks no version) while the test runs
    (``monkeypatch`` puts the store's own ``get`` back after it)."""

    def __init__(self, app: ServiceApplication, monkeypatch: Any):
        self.count = 0
        original = app.snapshots.get

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.count += kwargs.get("lte") is not None
            return original(*args, **kwargs)

        monkeypatch.setattr(app.snapshots, "get", counted)


@contextmanager
def racing(*apps: ServiceApplication, timeout: float = 5.0) -> Iterator[None]:
    """Each application's first write waits until every one of them is about to
    write: all have read before any writes, so on a shared aggregate all but one
    lose the race and must run their command again. (Their keyed commands do not take
    the lock across replicas meanwhile: it would make them take turns, not race.)"""
    barrier = threading.Barrier(len(apps))
    originals = []
    for app in apps:
        app.cluster_locks, unlocked = NoClusterLocks(), app.cluster_locks
        original = app.events.put
        waited = threading.Event()

        def put(*args: Any, _original: Callable = original, _waited: threading.Event = waited, **kwargs: Any):
            if not _waited.is_set():
                _waited.set()
                try:
                    barrier.wait(timeout)
                except threading.BrokenBarrierError:
                    pass
            return _original(*args, **kwargs)

        app.events.put = put  # type: ignore[method-assign]
        originals.append((app, original, unlocked))
    try:
        yield
    finally:
        for app, original, unlocked in originals:
            app.events.put = original  # type: ignore[method-assign]
            app.cluster_locks = unlocked


def run_together(*calls: Callable[[], Any]) -> list[Any]:
    """Run each call in its own thread; their results (or the exception raised) in order."""
    results: list[Any] = [None] * len(calls)

    def run(i: int, call: Callable[[], Any]) -> None:
        try:
            results[i] = call()
        except Exception as exc:  # the test inspects it
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


def use_store_settings(monkeypatch: Any, config: Any) -> None:
    """The environment a command-line tool (``python -m <service>.readmodel rebuild``) reads the test's store
    from: its kind, folder and PostgreSQL database."""
    monkeypatch.setenv("PERSISTENCE", config.persistence)
    monkeypatch.setenv("SFERA_VAR_DIR", str(config.var_dir))
    monkeypatch.setenv("SFERA_PG_PORT", str(config.postgres_port))
    monkeypatch.setenv("SFERA_PG_DB", config.postgres_db)


def resumes_after_a_failure_mid_batch(model: Any, handler: str, dump: Callable[[Any], dict],
                                      monkeypatch: Any) -> dict:
    """A read model (shared.projection) made again from nothing, whose projection's ``handler`` fails at its
    third event of a batch of four: the catch-up fails, the position stays before the head, and the next
    catch-up applies the rest exactly once, back to what ``dump`` read before. Returns that dump."""
    expected = dump(model)
    with model.transaction(write=True) as db:  # the read model from nothing again, then a backlog to apply
        model._reset(db)
    model.batch_size = 4
    original, calls = getattr(model.projection, handler), []

    def handled_then_killed(db: Any, event: Any) -> None:
        original(db, event)
        calls.append(event)
        if len(calls) == 3:
            raise RuntimeError("killed mid-batch")

    monkeypatch.setattr(model.projection, handler, handled_then_killed)
    try:
        model.catch_up()
    except RuntimeError as exc:
        assert str(exc) == "killed mid-batch"
    else:
        raise AssertionError("the catch-up did not meet the failing handler")
    assert 0 <= model.position() < model.head()
    model.catch_up()
    assert model.position() == model.head()
    assert dump(model) == expected
    return expected


def all_pages(list_page: Callable[[Any, int], tuple[list, Any]], limit: int,
              check_cursor: Callable[[str, list], None] | None = None) -> list:
    """Every item of a list read page by page (``list_page(cursor, limit) -> (page, next cursor)``): no page
    longer than ``limit``, at most 1,000 pages; ``check_cursor(cursor, page)`` looks at each next cursor."""
    items, cursor, pages = [], None, 0
    while True:
        page, cursor = list_page(cursor, limit)
        assert len(page) <= limit
        items += page
        pages += 1
        if cursor is None:
            return items
        if check_cursor is not None:
            check_cursor(cursor, page)
        assert pages < 1000


def dump_read_model(model: Any) -> dict[str, list]:
    """Every row of every table of a read model (shared.projection), in a stable order: two read models hold the
    same when their dumps are equal."""
    with model.reading() as db:
        return {t: sorted(repr(sorted(r.items())) for r in db.rows(f"SELECT * FROM {{{t}}}"))
                for t in model.projection.tables}
