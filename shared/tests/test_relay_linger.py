"""A busy relay reads at most once a ``linger`` (issue #17, the pipeline's burst): each commit of a burst woke it
for a read of its own (a select, a batch of one published and confirmed: bench.pipeline --bursts, about one read an
event); what commits meanwhile now goes in the next read. After a quiet moment a commit is read at once. A real
PostgreSQL, a real RabbitMQ, the relay in this process."""

from __future__ import annotations

import time

from shared.tests.test_relay_wake import Relay, commit
from shared.tests.test_relay_wake import open_store as open_store  # noqa: F401 - the fixture


def burst(app, seconds: float) -> list[str]:
    """Commits one after another for ``seconds``."""
    started, users = time.monotonic(), []
    while time.monotonic() - started < seconds:
        users.append(commit(app)[0])
    return users


def test_a_busy_relay_reads_at_most_once_a_linger_and_a_commit_after_a_quiet_moment_at_once(  # noqa: F811
        open_store, rabbitmq):
    app, config, broker = open_store("postgres")
    with Relay(app, rabbitmq.amqp_uri, config, safety_poll=5.0, linger=0.05) as relay:
        first, _ = commit(app)
        broker.arrival(first)
        time.sleep(0.3)  # quiet
        before = relay.reads
        users = burst(app, 1.0)
        reads = relay.reads - before
        for user in users:
            broker.arrival(user)
        time.sleep(0.3)  # quiet again
        user, at = commit(app)
        delay = broker.arrival(user) - at
    assert len(users) >= 100, len(users)  # a burst: one commit ~every ms or two
    assert reads <= 1.0 / 0.05 + 3, (reads, len(users))  # was about one read a commit
    assert delay < 0.04, delay  # no linger after a quiet moment
