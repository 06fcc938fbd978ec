"""Leases: one holder per cluster for work that must not run twice at once (a
service's outbox relay, a service's timers), whatever the number of replicas.

The holder is whoever holds a lock that dies with its process:

- PostgreSQL: a session advisory lock (``pg_try_advisory_lock``) on a dedicated
  connection; the server drops it when the connection ends, also when the holder
  is killed. The key is a 64-bit hash of the lease's name, per database.
- SQLite: ``fcntl.flock`` on ``<var>/leases/<name>.lock``; the kernel drops it
  when the holder's process dies (one machine: that is what SQLite allows anyway).
- memory: one process, nothing to share: always held.

A standby calls ``acquire()`` now and then and takes over once the holder is
gone; a holder calls ``still_held()`` now and then (PostgreSQL: the connection
is alive) and stops its work when that is false. Time-boxed leases are not
needed: a lock tied to the holder's connection or process ends with it.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import re
import threading
from pathlib import Path

from shared.config import Settings, settings

log = logging.getLogger("shared.lease")


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key for ``pg_try_advisory_lock``."""
    return int.from_bytes(hashlib.sha256(f"sfera-lease:{name}".encode()).digest()[:8], "big", signed=True)


class Lease:
    def __init__(self, name: str, config: Settings | None = None):
        self.name = name
        self.config = config or settings()
        self.held = False
        self._conn = None  # PostgreSQL
        self._file = None  # SQLite

    # -- the two calls -------------------------------------------------------------------------------------------
    def acquire(self) -> bool:
        """Hold the lease if nobody else does; True when held (also when it already was)."""
        if self.held:
            return True
        try:
            self.held = self._acquire()
        except Exception as exc:  # a store that is away: not the holder, try again later
            log.warning("lease: cannot ask", extra={"lease": self.name, "error": str(exc)})
            self._drop()
            self.held = False
        if self.held:
            log.info("lease acquired", extra={"lease": self.name, "pid": os.getpid()})
        return self.held

    def still_held(self) -> bool:
        """False once the lease was lost (PostgreSQL: its connection is gone)."""
        if not self.held:
            return False
        if self._conn is not None:
            try:
                self._conn.execute("SELECT 1")
            except Exception as exc:
                log.warning("lease lost", extra={"lease": self.name, "error": str(exc)})
                self._drop()
                self.held = False
        return self.held

    def release(self) -> None:
        if self.held:
            log.info("lease released", extra={"lease": self.name})
            if self._conn is not None:
                try:  # at once: a closed connection's locks go only when its server process has ended
                    self._conn.execute("SELECT pg_advisory_unlock(%s)", (advisory_key(self.name),))
                except Exception:
                    pass
        self._drop()
        self.held = False

    # -- per store -------------------------------------------------------------------------------------------------
    def _acquire(self) -> bool:
        kind = self.config.persistence
        if kind == "postgres":
            return self._acquire_postgres()
        if kind == "sqlite":
            return self._acquire_file()
        return True

    def _acquire_postgres(self) -> bool:
        import psycopg

        if self._conn is None or self._conn.closed:
            c = self.config
            self._conn = psycopg.connect(host=c.postgres_host, port=c.postgres_port, dbname=c.postgres_db,
                                         user=c.postgres_user, password=c.postgres_password, autocommit=True,
                                         connect_timeout=5, application_name=f"lease:{self.name}"[:63],
                                         keepalives=1, keepalives_idle=10, keepalives_interval=5, keepalives_count=3)
        (got,) = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (advisory_key(self.name),)).fetchone()
        return bool(got)

    def _acquire_file(self) -> bool:
        if self._file is None:
            path = lock_path(self.config, self.name)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(path, "a+")  # noqa: SIM115 (held open for as long as the lease)
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        self._file.seek(0)
        self._file.truncate()
        self._file.write(f"{os.getpid()}\n")
        self._file.flush()
        return True

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                pass
            self._conn = None
        if self._file is not None:
            self._file.close()  # closing the descriptor drops the flock
            self._file = None

    def __repr__(self) -> str:
        return f"Lease({self.name!r}, {self.config.persistence}, held={self.held})"


def lock_path(config: Settings, name: str) -> Path:
    return config.var_dir / "leases" / (re.sub(r"[^A-Za-z0-9_.-]", "-", name) + ".lock")


_leases: dict[str, Lease] = {}
_guard = threading.Lock()


def once_per_cluster(name: str, config: Settings | None = None) -> bool:
    """For timers: True in the one replica that holds the lease ``name`` (taken on the
    first call, kept for the process's life); False in the others, until the holder dies."""
    with _guard:
        lease = _leases.get(name)
        if lease is None:
            lease = _leases[name] = Lease(name, config)
    if lease.held and lease.still_held():
        return True
    return lease.acquire()
