"""A small platform for the reliability tests: identity's store (written by the
test itself), identity's relay, and the ledger consumer, on PostgreSQL."""

from __future__ import annotations

import pytest

from identity.application import IdentityApplication
from shared.store import make_application
from tests.fixtures.ledger import LedgerApplication

LEDGER_APP = "ledger=tests.fixtures.ledger:LedgerApplication"
LEDGER_SERVICE = "tests.fixtures.ledger:LedgerService"
LEDGER_QUEUE = "evt-identity-UserRegistered.v1--ledger.on_user_registered"


class Pipeline:
    def __init__(self, stack):
        self.stack = stack
        stack.prepare(migrate=["identity", LEDGER_APP], topology=[LEDGER_SERVICE])
        config = stack.settings()
        self.identity = make_application(IdentityApplication, "identity", config=config)
        self.ledger = make_application(LedgerApplication, "ledger", config=config)
        self.ledger_port = stack.config.metrics_base_port + 30

    def register(self, n: int, start: int = 0) -> list:
        users = []
        for i in range(start, start + n):
            issued = self.identity.request_code(f"+7900{i:07d}", "sms", client=f"reliability-{i}")
            users.append(self.identity.confirm_code(issued.challenge.id, issued.code, "test").account.id)
        return users

    def start_ledger(self, **env: str):
        self.stack.start_service("ledger", LEDGER_SERVICE, port=self.ledger_port, **env)
        self.stack.wait_healthy(["ledger"])

    def start_relay(self, wait: bool = True, **env: str):
        self.stack.start_relay("identity", **env)
        if wait:
            self.stack.wait_healthy(["identity-relay"])

    def tallies(self, users) -> list[int]:
        return [self.ledger.tally(u) for u in users]

    @property
    def ledger_metrics(self) -> str:
        return f"http://127.0.0.1:{self.ledger_port}/metrics"

    @property
    def relay_position(self) -> int | None:
        return self.identity.process_recorder.max_tracking_id("outbox:identity")


@pytest.fixture
def pipeline(make_stack) -> Pipeline:
    return Pipeline(make_stack("postgres"))


@pytest.fixture
def pipeline_own_broker(make_stack) -> Pipeline:
    """For a test that restarts the broker: one of its own, not the session's."""
    return Pipeline(make_stack("postgres", own_broker=True))
