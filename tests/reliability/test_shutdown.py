"""Every kind of process exits within seconds of SIGTERM even when its broker
does not answer (a port that accepts connections and never speaks AMQP): a
nameko service, a relay, the SFU and the gateway."""

from __future__ import annotations

import os
import signal
import socket
import time

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
