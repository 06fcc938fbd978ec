"""bench.messaging_trace's messaging process: the service exactly as ``shared.runner`` runs it, with timers around
a post's stages (wall clock, comparable with the bench's own stamps), appended as JSON lines to
``SFERA_TRACE_FILE`` twice a second. Nothing of the service's behaviour changes; the timers' cost is a few
microseconds a stage. Stages:

- ``post``: the application's ``post`` from its call (the RPC's worker, after nameko gave it one) to its answer,
  with how many posts were under way in the process at its call;
- ``batch``: one turn of a chat's posts (``_post_together``): the texts it took, when it started, how long the
  key's turn took to get (the local lock and the cluster lock, ``turn``) and the cluster lock's acquire alone,
  the read ahead (``prefetch``), the read marks, the save and the save's statement (``_call_insert_function``,
  the pool's connection included);
- ``connect``: every PostgreSQL connection the process opened (application_name, how long);
- ``catch_up``: each catch-up of a read model (how long, how many notifications): CPU in the service's one
  thread that every post waits behind;
- ``gc``: each of Python's cyclic collections (how long, which generation);
- ``gap``: the event loop's stalls (a green thread that woke every 5 ms and found itself late by more than 10 ms).

    python -m bench.messaging_trace_service messaging
"""

from __future__ import annotations

import json
import os
import sys
import time
from contextlib import contextmanager

import shared.runner as runner  # eventlet patched and psycopg told first: the imports below come after it

TRACE = os.environ["SFERA_TRACE_FILE"]
_records: list[dict] = []
_active = [0]
_local = None  # a green thread's own (threading.local, made after eventlet patched threading)


def note(kind: str, **fields) -> None:
    _records.append({"k": kind, **fields})


def _flush_forever() -> None:
    global _records
    while True:
        time.sleep(0.5)  # eventlet's
        out, _records = _records, []
        if out:
            with open(TRACE, "a") as f:
                f.write("".join(json.dumps(r) + "\n" for r in out))


def _watch_loop() -> None:
    while True:
        t0 = time.perf_counter()
        time.sleep(0.005)  # eventlet's
        late = time.perf_counter() - t0 - 0.005
        if late > 0.010:
            note("gap", t=time.time(), ms=late * 1000)


def _timed(stage: str, fn):
    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            batch = getattr(_local, "batch", None)
            if batch is not None:
                batch[stage] = batch.get(stage, 0.0) + (time.perf_counter() - t0) * 1000
    return wrapper


def install() -> None:
    global _local
    import threading

    import eventlet
    import psycopg

    import shared.store as store
    from messaging.application.messages import Messages
    from shared.locks import ClusterLocks
    from shared.observability.gc import time_collections
    from shared.projection import ReadModel
    from shared.store.recorders import PostgresGroupRecorder

    _local = threading.local()
    post, together, turn = Messages.post, Messages._post_together, store.turn

    def traced_post(self, actor_id, m):
        _active[0] += 1
        t0, active = time.time(), _active[0]
        try:
            return post(self, actor_id, m)
        finally:
            _active[0] -= 1
            note("post", text=m.text, t0=t0, t1=time.time(), active=active)

    def traced_together(self, chat_id, posts, look_up_keys=True):
        _local.batch = {"turn": getattr(_local, "turn_ms", None), "acquire": getattr(_local, "acquire_ms", None)}
        t0 = time.time()
        try:
            return together(self, chat_id, posts, look_up_keys)
        finally:
            batch, _local.batch = _local.batch, None
            note("batch", texts=[p[1].text for p in posts], t0=t0, t1=time.time(), **batch)

    @contextmanager
    def traced_turn(*args, **kwargs):
        t0 = time.perf_counter()
        _local.acquire_ms = 0.0
        with turn(*args, **kwargs):
            _local.turn_ms = (time.perf_counter() - t0) * 1000
            yield

    acquire = ClusterLocks.acquire

    def traced_acquire(self, name):
        t0 = time.perf_counter()
        try:
            return acquire(self, name)
        finally:
            _local.acquire_ms = (time.perf_counter() - t0) * 1000

    def noting_connects(connect):
        def traced(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return connect(*args, **kwargs)
            finally:
                note("connect", t=time.time(), app=kwargs.get("application_name"),
                     ms=(time.perf_counter() - t0) * 1000)
        return traced

    catch_up = ReadModel.catch_up

    def traced_catch_up(self, upto=None):
        t0 = time.perf_counter()
        moved = catch_up(self, upto)
        note("catch_up", t=time.time(), ms=(time.perf_counter() - t0) * 1000, moved=moved)
        return moved

    Messages.post = traced_post
    Messages._post_together = traced_together
    store.turn = traced_turn
    ClusterLocks.acquire = traced_acquire
    psycopg.Connection.connect = classmethod(noting_connects(psycopg.Connection.connect.__func__))
    # psycopg.connect: Connection.connect bound when psycopg was imported (ClusterLocks' way), not the one above
    psycopg.connect = noting_connects(psycopg.connect)
    ReadModel.catch_up = traced_catch_up
    store.ServiceApplication.prefetch = _timed("prefetch", store.ServiceApplication.prefetch)
    Messages._read_marks = _timed("marks", Messages._read_marks)
    store.ServiceApplication.save = _timed("save", store.ServiceApplication.save)
    PostgresGroupRecorder._call_insert_function = _timed("insert", PostgresGroupRecorder._call_insert_function)
    time_collections(lambda generation, pause, cpu, collected:
                     note("gc", t=time.time(), ms=pause * 1000, gen=generation))
    eventlet.spawn_n(_flush_forever)
    eventlet.spawn_n(_watch_loop)


if __name__ == "__main__":
    install()
    sys.exit(runner.main(sys.argv[1:]))
