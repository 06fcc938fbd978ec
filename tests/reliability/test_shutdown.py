"""Every kind of process exits within seconds of SIGTERM even when its broker
does not answer (a port that accepts connections and never speaks AMQP): a
nameko service, a relay, the SFU and the gateway."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from datetime import datetime

import pytest

from tests.helpers import eventually
from tools.devstack.infra import free_port, port_open
from tools.devstack.stack import PYTHON, Stack, StackConfig

pytestmark = pytest.mark.reliability

GRACE = 3.0


@pytest.fixture
def silent_broker():
    """A listening socket that never accepts: AMQP handshakes hang in it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(200)
        yield s.getsockname()[1]


def test_every_process_exits_on_sigterm_within_seconds_when_the_broker_is_gone(tmp_path, silent_broker):
    stack = Stack(StackConfig(var_dir=tmp_path, persistence="sqlite", amqp_port=silent_broker,
                              gateway_port=free_port(), metrics_base_port=free_port(), sfu_port=free_port(),
                              gateway_threads=4, extra_env={"SFERA_STOP_GRACE": str(GRACE)}))
    stack.log_dir.mkdir(parents=True)
    stack.run_tool("migrate", [PYTHON, "-m", "shared.store.migrate", "identity"])
    try:
        stack.start_service("identity")
        stack.start_relay("identity")
        stack.start_sfu()
        stack.start_gateway()
        for port in (stack.metrics_port("identity"), stack.metrics_port("identity-relay"), stack.config.sfu_port,
                     stack.config.gateway_port):
            eventually(lambda p=port: port_open(p), timeout=60, what=f"port {port} to listen")
        time.sleep(2)  # each is now waiting for the broker
        assert not stack.dead_processes()

        started = time.monotonic()
        for managed in stack.processes.values():
            os.killpg(managed.process.pid, signal.SIGTERM)
        took = {}
        for name, managed in stack.processes.items():
            remaining = max(0.1, started + GRACE + 5 - time.monotonic())
            try:
                managed.process.wait(timeout=remaining)
            except Exception:
                pass
            took[name] = None if managed.process.poll() is None else round(time.monotonic() - started, 1)
        assert all(t is not None for t in took.values()), f"still running after SIGTERM: {took}"
    finally:
        stack.stop()


def test_a_service_with_its_broker_up_stops_within_a_second_of_sigterm(make_stack):
    """nameko's queue consumer notices a stop between two waits for the broker: with kombu's default wait (1 s)
    every service took 2 s and more to stop (a wait for its consumers' cancel, then one more full wait before its
    loop ended), in every deploy and every test's teardown. Timed by the service's own log, from the signal to
    its runner's end (the interpreter's exit after it depends on the machine's load alone)."""
    stack = make_stack("sqlite")
    stack.prepare(migrate=["identity"], topology=["identity.service:IdentityService"])
    managed = stack.start_service("identity")
    log = stack.log_dir / "identity.log"
    stack.wait_healthy(["identity"])  # ok once the runner has started its consumers (test_readiness.py)
    os.killpg(managed.process.pid, signal.SIGTERM)
    assert stack.wait_exit("identity", timeout=10) == 0
    logged = {}
    for line in log.read_text().splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            logged.setdefault(entry["msg"], datetime.fromisoformat(entry["ts"]))
    took = (logged["service stopped"] - logged["stopping"]).total_seconds()
    assert took < 1.0, f"identity took {took:.2f} s from SIGTERM to its runner's end"
