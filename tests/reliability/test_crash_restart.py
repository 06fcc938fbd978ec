"""Crash and restart (issue #12): during a registration load, kill -9 one process
of each kind (a relay, a nameko service, the gateway, the SFU) under the
supervisor (Stack.supervise, what `make run` runs): each is started again, the
platform stays up (every /healthz ok, a sign-in through the gateway works), and
every registered account reaches school and the ledger exactly once.

Registrations are written by the test into identity's store (as identity does on
a confirmed code), so the load itself never depends on a process being killed."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from identity.application import IdentityApplication
from school.application import SchoolApplication
from shared.store import make_application
from tests.e2e.api import Api
from tests.fixtures.ledger import LedgerApplication
from tests.helpers import eventually
from tools import chaos

pytestmark = pytest.mark.reliability

KILLED = ["identity-relay", "school", "gateway", "sfu"]


def test_kill_9_each_kind_of_process_under_load_loses_nothing_doubles_nothing(make_stack):
    started = time.monotonic()
    stack = make_stack("postgres", SFERA_CODES_PER_HOUR_PER_CLIENT="100000", SFERA_STOP_GRACE="2")
    chaos.start(stack)  # everything, the ledger consumer too, with quick restarts
    config = stack.settings()
    identity = make_application(IdentityApplication, "identity", config=config)
    ledger = make_application(LedgerApplication, "ledger", config=config)
    school = make_application(SchoolApplication, "school", config=config)

    users: list = []
    stop = threading.Event()
    failures: list = []

    def register() -> None:
        i = 0
        while not stop.is_set():
            try:
                issued = identity.request_code(f"+7901{i:07d}", "sms", client=f"crash-{i}")
                users.append(identity.confirm_code(issued.challenge.id, issued.code, "test").account.id)
            except Exception as exc:  # the test's own writes must not fail
                failures.append(exc)
                return
            i += 1
            time.sleep(0.02)

    load = threading.Thread(target=register, daemon=True)
    load.start()
    try:
        for name in KILLED:
            before = len(users)
            eventually(lambda b=before: len(users) >= b + 10, what="registrations under way")
            managed = stack.processes[name]
            os.killpg(managed.process.pid, signal.SIGKILL)
            stack.supervise_until(lambda m=managed: m.restarts == 1 and stack.healthy(m.name), timeout=60,
                            what=f"{name} restarted and healthy")
    finally:
        stop.set()
        load.join(timeout=10)
    assert not failures, failures
    n = len(users)
    assert n >= 40

    def all_once() -> bool:
        stack.supervise()
        return [ledger.tally(u) for u in users] == [1] * n and all(u in school.repository for u in users)

    eventually(all_once, timeout=60, interval=0.5, what="every account applied once by the ledger and in school")
    assert [ledger.tally(u) for u in users] == [1] * n, "0 lost, 0 doubled"
    assert all(school.get_person(u).id == u for u in users)

    # The platform stayed up: every process healthy, each killed one restarted once, nothing else restarted.
    stack.supervise_until(lambda: all(stack.healthy(name) for name in stack.processes), timeout=30,
                    what="every process healthy")
    restarts = {name: s["restarts"] for name, s in stack.status().items()}
    assert restarts == {name: (1 if name in KILLED else 0) for name in stack.processes}, restarts
    Api(stack).sign_in()  # through the restarted gateway to the services
    assert time.monotonic() - started < 150, "keep the check bounded"
