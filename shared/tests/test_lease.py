"""Leases (shared/lease.py): one holder per cluster, a standby takes over when the
holder is gone; the school's graduation timer runs in the holder only (SC-4)."""

from __future__ import annotations

import subprocess
import sys
import time
from unittest import mock

import pytest

from shared import lease as leases
from shared.lease import Lease

pytestmark = pytest.mark.integration


def test_one_holder_then_the_standby_takes_over(durable_store_settings):
    holder, standby = Lease("outbox:test", durable_store_settings), Lease("outbox:test", durable_store_settings)
    other = Lease("outbox:other", durable_store_settings)
    assert holder.acquire() and holder.still_held()
    assert not standby.acquire() and not standby.still_held()
    assert other.acquire(), "another name is another lease"
    assert holder.acquire(), "asking again keeps it"
    holder.release()
    assert standby.acquire() and standby.still_held()
    standby.release()
    other.release()


def test_a_killed_holders_lease_goes_to_the_standby(durable_store_settings, tmp_path):
    """The lock dies with its process (connection or file descriptor), no expiry to wait for."""
    s = durable_store_settings
    env = {"SFERA_VAR_DIR": str(s.var_dir), "PERSISTENCE": s.persistence, "SFERA_PG_PORT": str(s.postgres_port),
           "SFERA_PG_DB": s.postgres_db, "PATH": "/usr/bin:/bin"}
    script = ("import sys, time\nfrom shared.lease import Lease\nheld = Lease('timer:t')\nassert held.acquire()\n"
              "print('held', flush=True)\ntime.sleep(120)\n")
    child = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, text=True,
                             cwd=str(leases.__file__).rsplit("/shared/", 1)[0])
    try:
        assert child.stdout.readline().strip() == "held"
        standby = Lease("timer:t", s)
        assert not standby.acquire()
        child.kill()
        child.wait()
        deadline = time.monotonic() + 10
        while not standby.acquire() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert standby.held
        standby.release()
    finally:
        child.kill()


def test_a_lost_postgres_connection_is_a_lost_lease(postgres, tmp_path):
    from shared.config import settings

    postgres.ensure_database("leases")
    config = settings({"PERSISTENCE": "postgres", "SFERA_PG_PORT": str(postgres.port), "SFERA_PG_DB": "leases",
                       "SFERA_VAR_DIR": str(tmp_path)})
    lease = Lease("outbox:lost", config)
    assert lease.acquire()
    postgres.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'lease:outbox:lost'")
    assert not lease.still_held()
    assert lease.acquire(), "nobody else holds it: taken again on a new connection"
    lease.release()


def test_the_graduation_timer_runs_in_one_replica_only(durable_store_settings, monkeypatch):
    """SC-4: each replica's timer fires; only the lease holder graduates classes."""
    from school.service import GRADUATION_LEASE, SchoolService

    monkeypatch.setattr(leases, "_leases", {})
    replicas = [SchoolService(), SchoolService()]
    for replica in replicas:
        replica.app = mock.Mock(graduate_due=mock.Mock(return_value=2))
    other_process = Lease(GRADUATION_LEASE, durable_store_settings)  # the first replica elsewhere
    assert other_process.acquire()
    with mock.patch.object(leases, "settings", return_value=durable_store_settings):
        assert [r.graduate_classes() for r in replicas] == [0, 0]
        other_process.release()  # that replica died
        assert [r.graduate_classes() for r in replicas] == [2, 2]  # this process took the lease (one per process)
    assert sum(r.app.graduate_due.call_count for r in replicas) == 2
    leases._leases[GRADUATION_LEASE].release()
