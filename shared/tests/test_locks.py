"""Cluster locks (shared/locks.py): keyed commands of a service's replicas take turns on PostgreSQL through a
bounded set of connections of their own, reused from command to command (issue #17)."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from shared.locks import ClusterLocks

pytestmark = pytest.mark.integration


@pytest.fixture
def conninfo(request) -> dict:
    from conftest import _store_settings

    s = _store_settings("postgres", request.getfixturevalue("tmp_path"), request)
    return {"host": "127.0.0.1", "port": s.postgres_port, "dbname": s.postgres_db, "user": "postgres"}


def lock_connections(conninfo: dict, expected: int | None = None) -> int:
    """Lock connections the server has now (with ``expected``: waiting up to 2 s for a closed one's backend to
    leave pg_stat_activity)."""
    deadline = time.monotonic() + 2
    while True:
        with psycopg.connect(**conninfo, autocommit=True) as conn:
            count = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'keylock' "
                                 "AND datname = %s", (conninfo["dbname"],)).fetchone()[0]
        if expected is None or count == expected or time.monotonic() > deadline:
            return count
        time.sleep(0.05)


def test_one_key_is_held_by_one_process_at_a_time(conninfo):
    first, second = ClusterLocks(conninfo, timeout=0.3), ClusterLocks(conninfo, timeout=0.3)
    try:
        with first.hold("chat:1") as locked:
            assert locked
            with second.hold("chat:1") as also:
                assert not also, "the other replica waits lock_timeout, then goes on unlocked"
            with second.hold("chat:2") as other_key:
                assert other_key
        with second.hold("chat:1") as now:
            assert now
    finally:
        first.close()
        second.close()


def test_a_busy_process_has_at_most_its_limit_of_lock_connections_and_keeps_a_few_idle(conninfo):
    """Before: every command connected a connection of its own, as many at once as commands ran: a burst on a
    busy replica could exhaust max_connections. Idle ones kept: at most ``keep`` (CI ran out of connections with
    ten kept by every process of the replicas test); with ``idle_for=0`` the others close at once."""
    locks = ClusterLocks(conninfo, limit=3, keep=2, idle_for=0)
    inside, release = threading.Barrier(6), threading.Event()
    results: list[bool] = []

    def command(n: int) -> None:
        with locks.hold(f"chat:{n}") as locked:
            results.append(locked)
            inside.wait(timeout=10)
            release.wait(timeout=10)

    threads = [threading.Thread(target=command, args=(n,)) for n in range(5)]
    try:
        for t in threads:
            t.start()
        inside.wait(timeout=10)
        assert lock_connections(conninfo) == 3
        assert sorted(results) == [False, False, True, True, True], "beyond the limit a command goes on unlocked"
        release.set()
        for t in threads:
            t.join(timeout=10)
        assert lock_connections(conninfo, 2) == 2, "two kept idle, the third closed"
        for n in range(50):
            with locks.hold(f"chat:{n % 7}") as locked:
                assert locked
        assert locks.connects == 3, "the idle ones are reused, not opened again for each command"
        assert lock_connections(conninfo, 2) == 2
    finally:
        release.set()
        locks.close()
    assert lock_connections(conninfo, 0) == 0


def test_turns_on_several_keys_at_once_reuse_their_connections_and_the_surplus_closes_once_unused(conninfo):
    """Before: a process running turns on 5 chats at once (bench.messaging_trace, 200 posts/s over 5 chats) gave
    back 5 lock connections, kept 2 and closed 3, and opened them again for the next turns: ~1 connect in 12 posts,
    the cluster lock's acquire p90 10-20 ms. Now idle ones beyond ``keep`` stay while they are used again within
    ``idle_for`` seconds, and close once unused that long."""
    locks = ClusterLocks(conninfo, limit=8, keep=2, idle_for=0.5)
    try:
        for _ in range(10):
            inside = threading.Barrier(5)

            def command(n: int, inside=inside) -> None:
                with locks.hold(f"chat:{n}") as locked:
                    assert locked
                    inside.wait(timeout=10)

            threads = [threading.Thread(target=command, args=(n,)) for n in range(5)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=10)
        assert locks.connects == 5, "each turn takes a connection given back by one before it"
        assert lock_connections(conninfo) == 5
        assert lock_connections(conninfo, 2) == 2, "unused for idle_for: back to keep"
    finally:
        locks.close()
    assert lock_connections(conninfo, 0) == 0
