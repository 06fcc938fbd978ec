"""Two relays of one service (a standby beside the holder): the standby waits
instead of crashing on the position's IntegrityError, takes over when the holder
is killed, and every event is applied exactly once (PostgreSQL advisory lock;
flock on SQLite)."""

from __future__ import annotations

import pytest

from tests.helpers import eventually
from tests.reliability.conftest import Pipeline
from tools.devstack.stack import PYTHON, Managed

pytestmark = pytest.mark.reliability


@pytest.mark.parametrize("persistence", ["postgres", "sqlite"])
def test_a_second_relay_waits_as_a_standby_and_takes_over_when_the_holder_dies(make_stack, persistence):
    stack = make_stack(persistence)
    pipeline = Pipeline(stack)
    pipeline.start_ledger()
    pipeline.start_relay()
    port = stack.config.metrics_base_port + 31
    stack._spawn(Managed("identity-relay-b", [PYTHON, "-m", "shared.bus.relay", "identity"],
                         f"http://127.0.0.1:{port}/healthz", {"SFERA_METRICS_PORT": str(port)}))
    stack.wait_healthy(["identity-relay-b"])

    users = pipeline.register(30)
    eventually(lambda: pipeline.tallies(users) == [1] * 30, what="the first batch applied once")
    assert not stack.dead_processes(), "the standby must wait, not crash"
    log_b = (stack.log_dir / "identity-relay-b.log").read_text()
    assert "lease acquired" not in log_b and "IntegrityError" not in log_b

    stack.stop_process("identity-relay", kill=True)
    more = pipeline.register(30, start=30)
    eventually(lambda: pipeline.tallies(users + more) == [1] * 60, timeout=60,
               what="the standby to take over and deliver the rest once")
    assert "lease acquired" in (stack.log_dir / "identity-relay-b.log").read_text()
    stack.wait_healthy(["identity-relay-b"])
    assert not stack.dead_processes()
