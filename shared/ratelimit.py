"""Rate limits kept beside a service's event store (same SQLite file or the same
PostgreSQL schema), updated atomically: a counter per key and window, and the
time of the last hit for countdowns ("a new code in 60 s").

Why not an aggregate: a limit on a hot key (one school's address) is written by
every request at once; optimistic concurrency would make them retry each
other, while a row lock serializes them in microseconds. Counters are
operational state, not domain history: nothing is lost if they are.
"""

from __future__ import annotations

import math
import sqlite3
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.clock import utcnow
from shared.errors import TooManyRequests

TABLE = "rate_limits"


@dataclass(frozen=True)
class Limit:
    window: timedelta
    limit: int
    code: str
    message: str
    min_interval: timedelta | None = None  # a countdown between two hits
    countdown_code: str | None = None
    countdown_message: str | None = None


@dataclass
class Row:
    window_start: datetime
    count: int
    last_at: datetime


def seconds_until(moment: datetime, now: datetime) -> int:
    """Whole seconds from ``now`` until ``moment``, rounded up (0 when it has passed)."""
    return max(0, math.ceil((moment - now).total_seconds()))


def wait_after(row: Row, limit: Limit, now: datetime) -> int:
    """Seconds until ``limit`` allows the next hit after ``row``: the countdown, or the
    rest of the window once its hits are spent, whichever ends later (0: at once)."""
    wait = 0
    if limit.min_interval is not None:
        wait = seconds_until(row.last_at + limit.min_interval, now)
    if row.count >= limit.limit:
        wait = max(wait, seconds_until(row.window_start + limit.window, now))
    return wait


def decide(row: Row | None, limit: Limit, now: datetime) -> Row:
    """The row after one more hit, or TooManyRequests (the row then stays as it was)
    whose ``retry_after`` is the real wait until the next hit is allowed."""
    if row is None or row.window_start <= now - limit.window:
        row = Row(now, 0, row.last_at if row else now - timedelta(days=3650))
    wait = wait_after(row, limit, now)
    if wait > 0:
        counting_down = limit.min_interval is not None and row.last_at > now - limit.min_interval
        code, message = ((limit.countdown_code or limit.code, limit.countdown_message or limit.message)
                         if counting_down and row.count < limit.limit else (limit.code, limit.message))
        raise TooManyRequests(code, message.format(wait=wait), {"retry_after": wait})
    return Row(row.window_start, row.count + 1, now)


@dataclass(frozen=True)
class Backoff:
    """Failures forgiven at once, then an exponentially growing wait before the next
    try (base, 2 x base, 4 x base … up to cap): never a lock that a stranger can set
    for good. Failures are forgotten after a quiet ``forget_after``."""

    free: int
    base: timedelta
    cap: timedelta
    forget_after: timedelta
    code: str
    message: str  # may use {wait}

    def delay(self, failures: int) -> timedelta:
        if failures < self.free:
            return timedelta(0)
        return min(self.cap, self.base * 2 ** min(failures - self.free, 32))


def now_minus_ten_years() -> datetime:
    return utcnow() - timedelta(days=3650)


def backoff_wait(row: Row | None, policy: Backoff, now: datetime) -> int:
    """Seconds until the next try is allowed after ``row``'s failures (0: now)."""
    if row is None or row.last_at <= now - policy.forget_after or not policy.delay(row.count):
        return 0  # (free tries never wait, even on a try another replica stamped a moment "later")
    return seconds_until(row.last_at + policy.delay(row.count), now)


def refuse_backoff(policy: Backoff, wait: int) -> TooManyRequests:
    return TooManyRequests(policy.code, policy.message.format(wait=wait), {"retry_after": wait})


def reserve_try(row: Row | None, policy: Backoff, now: datetime) -> Row:
    """The row with this try counted as a failure in advance (forgiven if it succeeds),
    or TooManyRequests: concurrent tries cannot all pass one check before any is counted."""
    if row is None or row.last_at <= now - policy.forget_after:
        row = Row(now, 0, now)
    wait = backoff_wait(row, policy, now)
    if wait > 0:
        raise refuse_backoff(policy, wait)
    return Row(row.window_start, row.count + 1, now)


class RateLimiter:
    """``check`` refuses past a limit; ``hit`` counts one (refusing past it too) and
    returns the seconds until the next hit is allowed (``wait_after``)."""

    def check(self, key: str, limit: Limit, now: datetime) -> None:
        decide(self._read(key), limit, now)

    def hit(self, key: str, limit: Limit, now: datetime) -> int:
        row = self._update(key, lambda row: decide(row, limit, now))
        return wait_after(row, limit, now)

    def _read(self, key: str) -> Row | None:
        raise NotImplementedError

    def _update(self, key: str, change: Callable[[Row | None], Row | None]) -> Row | None:
        """Read, change and write one row atomically (``None``: delete it); the new row."""
        raise NotImplementedError

    # -- back-off of failed tries (password sign-in) ----------------------------------------------
    def wait(self, key: str, policy: Backoff, now: datetime) -> int:
        return backoff_wait(self._read(key), policy, now)

    def reserve(self, key: str, policy: Backoff, now: datetime) -> None:
        self._update(key, lambda row: reserve_try(row, policy, now))

    def forgive(self, key: str) -> None:
        """A reserved try succeeded: it is not a failure."""
        self._update(key, lambda row: Row(row.window_start, max(0, row.count - 1), row.last_at) if row else None)

    def clear(self, key: str) -> None:
        self._update(key, lambda row: None)

    def mark(self, key: str, now: datetime) -> None:
        """Remember a fact under ``key`` (e.g. a known address)."""
        self._update(key, lambda row: Row(now, 1, now))

    def marked(self, key: str) -> bool:
        row = self._read(key)
        return row is not None and row.count > 0

    @staticmethod
    def for_store(env: Mapping[str, str], schema_default: str) -> RateLimiter:
        """The limiter beside the event store configured by eventsourcing's ``env``."""
        module = env.get("PERSISTENCE_MODULE", "eventsourcing.popo")
        create = env.get("CREATE_TABLE", "y").lower() in ("y", "yes", "t", "true", "1")
        if module.endswith("sqlite"):
            return SqliteRateLimiter(env["SQLITE_DBNAME"], create)
        if module.endswith("postgres"):
            return PostgresRateLimiter(env, env.get("POSTGRES_SCHEMA") or schema_default, create)
        return MemoryRateLimiter()


class MemoryRateLimiter(RateLimiter):
    def __init__(self):
        self.rows: dict[str, Row] = {}
        self.lock = threading.Lock()

    def _read(self, key: str) -> Row | None:
        return self.rows.get(key)

    def _update(self, key: str, change: Callable[[Row | None], Row | None]) -> Row | None:
        with self.lock:
            row = change(self.rows.get(key))
            if row is None:
                self.rows.pop(key, None)
            else:
                self.rows[key] = row
        return row


class SqliteRateLimiter(RateLimiter):
    def __init__(self, path: str, create: bool):
        self.path = path
        self.local = threading.local()
        if create:
            with self._conn() as conn:
                conn.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (key TEXT PRIMARY KEY, window_start TEXT NOT NULL, "
                             "count INTEGER NOT NULL, last_at TEXT NOT NULL)")

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            self.local.conn = conn
        return conn

    @staticmethod
    def _row(found: Any) -> Row | None:
        if found is None:
            return None
        return Row(datetime.fromisoformat(found[0]), found[1], datetime.fromisoformat(found[2]))

    def _read(self, key: str) -> Row | None:
        return self._row(self._conn().execute(
            f"SELECT window_start, count, last_at FROM {TABLE} WHERE key = ?", (key,)).fetchone())

    def _update(self, key: str, change: Callable[[Row | None], Row | None]) -> Row | None:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = change(self._read(key))
            if row is None:
                conn.execute(f"DELETE FROM {TABLE} WHERE key = ?", (key,))
            else:
                conn.execute(f"INSERT INTO {TABLE} (key, window_start, count, last_at) VALUES (?, ?, ?, ?) "
                             "ON CONFLICT (key) DO UPDATE SET window_start = excluded.window_start, "
                             "count = excluded.count, last_at = excluded.last_at",
                             (key, row.window_start.isoformat(), row.count, row.last_at.isoformat()))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return row


class PostgresRateLimiter(RateLimiter):
    def __init__(self, env: Mapping[str, str], schema: str, create: bool):
        import psycopg
        from psycopg import sql

        self.sql = sql
        self.conninfo = dict(host=env.get("POSTGRES_HOST", "127.0.0.1"), port=int(env.get("POSTGRES_PORT", 5432)),
                             dbname=env["POSTGRES_DBNAME"], user=env["POSTGRES_USER"],
                             password=env.get("POSTGRES_PASSWORD", ""))
        self.psycopg = psycopg
        self.table = sql.Identifier(schema, TABLE)
        self.lock = threading.Lock()
        self.conn = None
        if create:
            with psycopg.connect(**self.conninfo, autocommit=True) as conn:
                conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} (key text PRIMARY KEY, window_start timestamptz "
                                     "NOT NULL, count integer NOT NULL, last_at timestamptz NOT NULL)")
                             .format(self.table))

    def _connection(self):
        if self.conn is None or self.conn.closed:
            self.conn = self.psycopg.connect(**self.conninfo, autocommit=True)
        return self.conn

    def _select(self, conn, key: str, lock: bool) -> Row | None:
        query = "SELECT window_start, count, last_at FROM {} WHERE key = %s" + (" FOR UPDATE" if lock else "")
        found = conn.execute(self.sql.SQL(query).format(self.table), (key,)).fetchone()
        return Row(*found) if found else None

    def _read(self, key: str) -> Row | None:
        with self.lock:
            return self._select(self._connection(), key, lock=False)

    def _update(self, key: str, change: Callable[[Row | None], Row | None]) -> Row | None:
        with self.lock:
            conn = self._connection()
            with conn.transaction():
                # An empty row first, so that two first tries queue on its lock.
                conn.execute(self.sql.SQL("INSERT INTO {} (key, window_start, count, last_at) "
                                          "VALUES (%s, %s, 0, %s) ON CONFLICT (key) DO NOTHING").format(self.table),
                             (key, now_minus_ten_years(), now_minus_ten_years()))
                row = change(self._select(conn, key, lock=True))
                if row is None:
                    conn.execute(self.sql.SQL("DELETE FROM {} WHERE key = %s").format(self.table), (key,))
                else:
                    conn.execute(self.sql.SQL("UPDATE {} SET window_start = %s, count = %s, last_at = %s "
                                              "WHERE key = %s").format(self.table),
                                 (row.window_start, row.count, row.last_at, key))
        return row
