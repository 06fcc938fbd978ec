"""Locks by key: writers of one hot aggregate (a chat, an invite link) take turns instead of racing on its
version, inside one process (KeyedLocks) and across the replicas of a service on PostgreSQL (ClusterLocks)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger("shared.locks")


class _Entry:
    __slots__ = ("lock", "count", "baton")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count = 0  # holders and waiters
        self.baton: tuple[Any, Callable[[Any], None]] | None = None  # passed from a holder to the next (turn())


class KeyedLocks:
    """One lock per key, dropped when nobody holds or waits for it."""

    def __init__(self):
        self.guard = threading.Lock()
        self.locks: dict[Any, _Entry] = {}

    @contextmanager
    def hold(self, key: Any) -> Iterator[_Entry]:
        with self.guard:
            entry = self.locks.get(key)
            if entry is None:
                entry = self.locks[key] = _Entry()
            entry.count += 1
        try:
            with entry.lock:
                yield entry
        finally:
            with self.guard:
                entry.count -= 1
                baton = None
                if entry.count == 0:
                    del self.locks[key]
                    baton, entry.baton = entry.baton, None
            if baton is not None:  # left for a waiter that is gone (killed while waiting): given back
                baton[1](baton[0])

    def others_waiting(self, entry: _Entry) -> bool:
        with self.guard:
            return entry.count > 1


class ClusterLocks:
    """Locks by key across the processes of one store (replicas of a service): PostgreSQL session advisory
    locks, each held on a connection of this object's own — never the store's pool, which the command holding
    the lock reads and saves through meanwhile. Replicas writing one hot aggregate then take turns as threads of
    one process do (KeyedLocks) instead of racing on its version and running again.

    The lock only spares the races; optimistic concurrency still decides. A lock not granted within
    ``timeout`` seconds (PostgreSQL's ``lock_timeout``), or a database that cannot be reached, lets the command
    go on unlocked. A process has at most ``limit`` lock connections at once (``SFERA_CLUSTER_LOCK_CONNECTIONS``,
    default 10: nameko's workers a process), so a burst of commands cannot take more than its share of
    PostgreSQL's ``max_connections``; a command finding all of them lent goes on unlocked. Idle ones are kept
    for the next locks: ``keep`` of them for good, the others while they are used again within ``idle_for``
    seconds (``SFERA_CLUSTER_LOCK_IDLE``; turns on several chats at once took 5 and gave back 5, and closing all
    but two meant connecting again for the next turns: ~1 connect in 12 posts at 200/s over 5 chats, issue #17);
    unused that long, a reaper closes them (every replica of every service keeps its ``keep``: CI's replicas
    test ran out of max_connections when each process kept ten). ``idle_for=0``: closed at once, as before. A
    holder killed mid-command loses its locks with its connection."""

    def __init__(self, conninfo: dict[str, Any], timeout: float = 5.0, limit: int | None = None, keep: int = 2,
                 idle_for: float | None = None):
        from shared.config import env_float, env_int

        self.conninfo = {**conninfo, "autocommit": True, "connect_timeout": 2, "application_name": "keylock",
                         "options": f"-c lock_timeout={int(timeout * 1000)}"}
        self.limit = limit if limit is not None else env_int("SFERA_CLUSTER_LOCK_CONNECTIONS", 10)
        self.keep = keep
        self.idle_for = idle_for if idle_for is not None else env_float("SFERA_CLUSTER_LOCK_IDLE", 1.0)
        self.idle: list = []  # (connection, idle since): the most recently given back last
        self.reaping = False  # a reaper thread runs (idle ones beyond keep)
        self.open = 0  # connections of this object now, idle or lent
        self.connects = 0  # connections opened so far
        self.guard = threading.Lock()

    @contextmanager
    def hold(self, name: str) -> Iterator[bool]:
        """Holds the lock ``name`` (True), or goes on without it (False)."""
        held = self.acquire(name)
        try:
            yield held is not None
        finally:
            self.release(held)

    def acquire(self, name: str) -> tuple[Any, int] | None:
        """The lock ``name`` taken: (its connection, its key) for ``release``; None: going on without it."""
        from shared.lease import advisory_key

        key = advisory_key(f"key:{name}")
        conn = self._take()
        if conn is None:
            return None
        try:
            conn.execute("SELECT pg_advisory_lock(%s)", (key,))
        except Exception as exc:  # noqa: BLE001 - lock timeout, connection lost: go on unlocked
            log.warning("cluster lock not taken, going on without it", extra={"lock": name, "error": str(exc)})
            conn = self._keep_if_alive(conn)
            if conn is not None:
                self._give_back(conn)
            return None
        return conn, key

    def release(self, held: tuple[Any, int] | None) -> None:
        if held is None:
            return
        conn, key = held
        try:
            conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
        except Exception:  # noqa: BLE001 - closing the connection drops its locks
            self._close(conn)
            return
        self._give_back(conn)

    def _take(self):
        with self.guard:
            if self.idle:
                return self.idle.pop()[0]
            if self.open >= self.limit:
                return None  # every lock connection lent: this command goes on unlocked
            self.open += 1
            self.connects += 1
        try:
            import psycopg

            return psycopg.connect(**self.conninfo)
        except Exception as exc:  # noqa: BLE001 - the database away: unlocked, as before
            with self.guard:
                self.open -= 1
            log.warning("cluster lock: cannot connect", extra={"error": str(exc)})
            return None

    def _keep_if_alive(self, conn):
        if conn.closed or conn.broken:
            self._close(conn)
            return None
        return conn

    def _give_back(self, conn) -> None:
        with self.guard:
            kept = not conn.closed and (len(self.idle) < self.keep or self.idle_for > 0)
            if kept:
                self.idle.append((conn, time.monotonic()))
                reap = len(self.idle) > self.keep and not self.reaping
                self.reaping = self.reaping or reap
        if not kept:
            self._close(conn)
        elif reap:
            threading.Thread(target=self._reap, name="keylock-reaper", daemon=True).start()

    def _reap(self) -> None:
        """Closes idle connections beyond ``keep`` once unused for ``idle_for`` (the oldest first); ends when no
        more than ``keep`` are idle."""
        while True:
            time.sleep(self.idle_for / 2)
            with self.guard:
                now, surplus = time.monotonic(), []
                while len(self.idle) > self.keep and now - self.idle[0][1] >= self.idle_for:
                    surplus.append(self.idle.pop(0)[0])
                done = len(self.idle) <= self.keep
                if done:
                    self.reaping = False
            for conn in surplus:
                self._close(conn)
            if done:
                return

    def _close(self, conn) -> None:
        with self.guard:
            self.open -= 1
        try:
            conn.close()
        except Exception:  # noqa: BLE001 - gone already
            pass

    def close(self) -> None:
        with self.guard:
            idle, self.idle = self.idle, []
        for conn, _ in idle:
            self._close(conn)


class NoClusterLocks:
    """One process's store (SQLite, memory): nothing to share a lock with."""

    @contextmanager
    def hold(self, name: str) -> Iterator[bool]:
        yield False

    def acquire(self, name: str) -> None:
        return None

    def release(self, held: None) -> None:
        pass

    def close(self) -> None:
        pass


HANDOVERS = 8  # turns in a row one process keeps a key's cluster lock for while its own commands queue for it


@contextmanager
def turn(local: KeyedLocks, cluster: ClusterLocks | NoClusterLocks, key: Any, name: str,
         handovers: int = HANDOVERS) -> Iterator[None]:
    """A keyed command's turn: the key's lock in this process, then its cluster lock (``name``) across replicas.

    A turn that ends while another command of this process waits for the same key hands the cluster lock over to
    it instead of unlocking (a round trip) for the next to lock again (another, both inside the key's turn: posts
    into one busy chat take turns back to back, issue #17); at most ``handovers`` times in a row, so that another
    replica waiting for the key gets it. A baton left for a waiter that went away is unlocked by the last to leave."""
    with local.hold(key) as entry:
        baton, entry.baton = entry.baton, None
        if baton is not None:
            (held, passed), _ = baton
        else:
            held, passed = cluster.acquire(name), 0
        try:
            yield
        finally:
            if held is not None and passed < handovers and local.others_waiting(entry):
                entry.baton = ((held, passed + 1), lambda given: cluster.release(given[0]))
            else:
                cluster.release(held)
