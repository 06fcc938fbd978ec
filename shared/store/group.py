"""Group commit of processed events (issue #17, "consumers take batches").

A service's consumer applies each integration event in a worker of its own (nameko gives a consumer up to
``max_workers`` deliveries at once) and saves its effect with ``process_once``: the new events and the event's
tracking id in one transaction. One transaction per event costs its own round trips and its own commit (fsync).

``EventGroupCommit`` lets those saves share transactions: a save that finds no transaction of the group running
commits at once, alone (no added latency when events come one by one); saves that arrive while one is running
queue up, and the next transaction writes them all -- every queued save's events and every one of their
tracking ids -- and commits once. Each event is still recorded exactly once: its tracking id goes in the same
transaction as its effect, and a tracking id recorded before fails that transaction (``IntegrityError``).

A command's save (no tracking id: a post, a sign-up) goes the same way (``SFERA_STORE_GROUP_SAVES``, on unless
``off``): on PostgreSQL every save that writes events holds the events table's lock from its insert to its commit
(notification ids are issued in commit order), so the saves of commands on different keys at once -- posts into
5 chats, each in its own chat's turn -- waited for each other's commit one by one (a save's statement p50 0.9-3 ms
into one chat, 3-10 ms over 5, bench.messaging_trace); together they take the lock once and commit once. A save
that conflicts (another command saved the aggregate's version first) fails alone, as below, and its command runs
again on what is stored now (``ServiceApplication.retrying``).

A transaction of several saves that fails (one save's events conflict, one tracking id was recorded before,
the database refused one row) is not retried as a whole: every save of it is written again alone, so only the
failing one sees its error (its event then retries or dead-letters, shared/bus/consumer.py) and the others
are applied once. A save returns after its own transaction committed: the worker acks its delivery after that.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from eventsourcing.persistence import ProcessRecorder, StoredEvent, Tracking

from shared.observability import metrics

ALSO_TRACKING = "also_tracking"  # insert_events' keyword: the tracking ids of a group's other saves

# The process recorders that record several tracking ids in one insert (shared/store/recorders.py, which imports
# psycopg: loaded by eventsourcing's factory only, after shared.runner told psycopg about eventlet).
GROUP_RECORDERS = {
    "postgres": "shared.store.recorders:PostgresGroupRecorder",
    "sqlite": "shared.store.recorders:SQLiteGroupRecorder",
}


def can_group(recorder: ProcessRecorder) -> bool:
    return bool(getattr(recorder, "records_several_tracking_ids", False))


class _Save:
    __slots__ = ("stored", "tracking", "turn", "done", "alone", "ids", "error")

    def __init__(self, stored: list[StoredEvent], tracking: Tracking | None):
        self.stored = stored
        self.tracking = tracking
        self.turn = threading.Event()  # set when it is written, when it is to be written alone, or when it leads
        self.done = False
        self.alone = False
        self.ids: Sequence[int] | None = None
        self.error: BaseException | None = None


class EventGroupCommit:
    """Saves (with a tracking id or, a command's, without) from concurrent threads (green ones under eventlet) share
    transactions."""

    def __init__(self, recorder: ProcessRecorder, service: Callable[[], str], max_saves: int = 100):
        if not can_group(recorder):
            raise TypeError(f"{type(recorder).__name__} cannot record several tracking ids in one transaction")
        self.recorder = recorder
        self.service = service
        self.max_saves = max_saves
        self._lock = threading.Lock()
        self._queue: list[_Save] = []
        self._busy = False

    def insert(self, stored: list[StoredEvent], tracking: Tracking | None) -> Sequence[int] | None:
        """Write ``stored`` with ``tracking`` (None: a command's save) in a transaction (maybe shared); its
        notification ids, as ``ProcessRecorder.insert_events`` returns them. Raises what writing this save alone
        raised."""
        save = _Save(stored, tracking)
        with self._lock:
            self._queue.append(save)
            leads = not self._busy
            self._busy = True
        if not leads:
            save.turn.wait()
        if not save.done and not save.alone:  # it leads: it writes the queue's first saves, its own among them
            self._lead()
        if save.alone:
            return self._write_alone(save)
        if save.error is not None:
            raise save.error
        return save.ids

    def waiting(self) -> int:
        """Saves waiting for the running transaction to end (they go in the next one together)."""
        with self._lock:
            return len(self._queue) if self._busy else 0

    def _lead(self) -> None:
        try:
            with self._lock:
                batch, self._queue = self._queue[: self.max_saves], self._queue[self.max_saves:]
            self._write(batch)
        finally:
            with self._lock:
                if self._queue:
                    self._queue[0].turn.set()  # the next one leads
                else:
                    self._busy = False

    def _write(self, batch: list[_Save]) -> None:
        stored = [event for save in batch for event in save.stored]
        trackings = [save.tracking for save in batch if save.tracking is not None]
        try:
            ids = self.recorder.insert_events(stored, tracking=trackings[0] if trackings else None,
                                              **{ALSO_TRACKING: trackings[1:]})
        except BaseException as exc:  # noqa: BLE001 - handed to the save(s) it belongs to
            if len(batch) == 1:
                batch[0].error = exc
                batch[0].done = True
            else:
                metrics.store_group_failures.labels(self.service()).inc()
                for save in batch:  # each alone, in its own thread: only the failing one fails
                    save.alone = True
            for save in batch:
                save.turn.set()
            return
        metrics.store_group_saves.labels(self.service()).observe(len(batch))
        start = 0
        for save in batch:
            save.ids = list(ids[start: start + len(save.stored)]) if ids else None
            start += len(save.stored)
            save.done = True
            save.turn.set()

    def _write_alone(self, save: _Save) -> Sequence[int] | None:
        ids = self.recorder.insert_events(save.stored, tracking=save.tracking)
        metrics.store_group_saves.labels(self.service()).observe(1)
        return ids


class _Read:
    __slots__ = ("originator_id", "after", "turn", "done", "events", "error")

    def __init__(self, originator_id: Any, after: int):
        self.originator_id = originator_id
        self.after = after
        self.turn = threading.Event()  # set when it was read, or when it leads
        self.done = False
        self.events: list[StoredEvent] = []
        self.error: BaseException | None = None


class EventGroupRead:
    """Reads of aggregates' events from concurrent threads (green ones under eventlet) share statements, as their
    saves share transactions (``EventGroupCommit``): a read that finds none of the group running reads at once,
    alone (no added latency when reads come one by one); reads that arrive while one runs queue up, and the next
    statement reads them all (``select_many``: ``(originator_id, after version)`` pairs -> each one's events after
    it, in version order; PostgreSQL's ``select_events_after``). A consumer's workers each read the aggregate their
    event changes: one round trip each before (issue #17, "event pipeline"). Each read still sees every event
    committed before it was asked for: the statement that answers it starts after."""

    def __init__(self, select_many: Callable[[list[tuple[Any, int]]], dict[Any, list[StoredEvent]]],
                 service: Callable[[], str], max_reads: int = 100):
        self.select_many = select_many
        self.service = service
        self.max_reads = max_reads
        self._lock = threading.Lock()
        self._queue: list[_Read] = []
        self._busy = False

    def select(self, originator_id: Any, after: int) -> list[StoredEvent]:
        """``originator_id``'s events after version ``after``, in version order (maybe read with others')."""
        read = _Read(originator_id, after)
        with self._lock:
            self._queue.append(read)
            leads = not self._busy
            self._busy = True
        if not leads:
            read.turn.wait()
        if not read.done:  # it leads: it reads the queue's first reads, its own among them
            self._lead()
        if read.error is not None:
            raise read.error
        return read.events

    def waiting(self) -> int:
        """Reads waiting for the running statement to end (they go in the next one together)."""
        with self._lock:
            return len(self._queue) if self._busy else 0

    def _lead(self) -> None:
        with self._lock:
            batch, self._queue = self._queue[: self.max_reads], self._queue[self.max_reads:]
        try:
            after: dict[Any, int] = {}
            for read in batch:  # one pair an aggregate (two of one would read its events twice)
                after[read.originator_id] = min(read.after, after.get(read.originator_id, read.after))
            found = self.select_many(list(after.items()))
        except BaseException as exc:  # noqa: BLE001 - every read of the statement sees its error
            for read in batch:
                read.error = exc
        else:
            metrics.store_group_reads.labels(self.service()).observe(len(batch))
            for read in batch:
                read.events = [e for e in found.get(read.originator_id, ()) if e.originator_version > read.after]
        finally:
            for read in batch:
                read.done = True
                read.turn.set()
            with self._lock:
                if self._queue:
                    self._queue[0].turn.set()  # the next one leads
                else:
                    self._busy = False
