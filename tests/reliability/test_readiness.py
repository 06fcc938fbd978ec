"""A nameko service is ready (/healthz 200) only once its runner has started every entry point; a SIGTERM
before that (the metrics port answers from the first moment) ends it promptly and cleanly. Same meaning for a
relay: ready once its loop runs."""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.error
import urllib.request

import pytest

from tests.helpers import eventually
from tools.devstack.infra import port_open

pytestmark = pytest.mark.reliability


def health(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_healthz_is_starting_until_the_runner_has_started_every_entry_point(make_stack):
    """Before: /healthz said ok from the port's first moment, ~0.1 s before nameko's consumers and RPC entry
    points were up (a probe, a supervisor or a test then took it for ready)."""
    stack = make_stack("sqlite")
    stack.prepare(migrate=["identity"], topology=["identity.service:IdentityService"])
    managed = stack.start_service("identity")
    log = stack.log_dir / "identity.log"
    eventually(lambda: port_open(stack.metrics_port("identity")), timeout=60, interval=0.005, what="metrics port")
    answers = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status, body = health(managed.health_url)
        if status == 200:
            break
        answers.append((status, body))
    else:
        raise AssertionError(f"identity never became ready: {answers[-1:]}")
    # the runner logs "service started" once runner.start() has returned, then says ready
    assert "service started" in log.read_text(), "ok before the runner had started"
    assert body["status"] == "ok"
    for status, early in answers:
        assert status == 503
        assert early["status"] == "starting" and early["process"] == "identity", early
        assert "not started" in early["message"]


@pytest.mark.parametrize("after", [0.0, 0.03, 0.06])
def test_sigterm_while_the_runner_starts_stops_the_service_promptly_and_cleanly(make_stack, after):
    """Before: a SIGTERM in the gap between the port's first answer and the runner's start made nameko fail
    ("re-send() an already-triggered event") and the process hang until the stop alarm killed it (exit -14);
    right at the port's first answer, before the handlers were installed, it died of the signal (-15)."""
    stack = make_stack("sqlite", SFERA_STOP_GRACE="8")
    stack.prepare(migrate=["identity"], topology=["identity.service:IdentityService"])
    managed = stack.start_service("identity")
    log = stack.log_dir / "identity.log"
    eventually(lambda: port_open(stack.metrics_port("identity")), timeout=60, interval=0.005, what="metrics port")
    time.sleep(after)
    started = time.monotonic()
    os.killpg(managed.process.pid, signal.SIGTERM)
    code = stack.wait_exit("identity", timeout=15)
    took = time.monotonic() - started
    assert code == 0, f"exit {code} after {took:.1f} s; {log.read_text()[-2000:]}"
    assert took < 4, f"took {took:.1f} s to stop"
    assert "re-send()" not in log.read_text()



def test_a_relay_is_ready_once_its_loop_runs_and_a_sigterm_at_its_first_answer_stops_it_cleanly(make_stack):
    """The relay's gap (its port answers a few milliseconds before asyncio's loop runs it) is short, but the
    same rules: before the loop, a relay without the lease yet looked like a standby and said ok, and a SIGTERM
    found no handler of its own (exit -15)."""
    stack = make_stack("postgres", SFERA_STOP_GRACE="8")
    stack.prepare(migrate=["identity"], topology=["identity.service:IdentityService"])
    managed = stack.start_relay("identity")
    log = stack.log_dir / "identity-relay.log"
    eventually(lambda: port_open(stack.metrics_port("identity-relay")), timeout=60, interval=0.002, what="port")
    status, body = health(managed.health_url)
    os.killpg(managed.process.pid, signal.SIGTERM)
    if status == 200:  # the loop already ran
        assert "relay starting" in log.read_text(), "ok before the relay's loop ran"
    else:
        assert body["status"] in ("starting", "failing"), body
    started = time.monotonic()
    code = stack.wait_exit("identity-relay", timeout=15)
    assert code == 0, f"exit {code}; {log.read_text()[-2000:]}"
    assert time.monotonic() - started < 4
