"""Chaos under load, bounded (issue #18; `make chaos` runs every disruption): sign-ins, messages, joins and
e-journal webhooks through the gateway while RabbitMQ and PostgreSQL restart and a service and the gateway are
killed under the supervisor; nothing accepted is lost or doubled, and the platform recovers from each."""

from __future__ import annotations

import io
import time

import pytest

from tools import chaos

pytestmark = pytest.mark.reliability

# a relay's crash has its own test (test_relay_crash.py); a service and the gateway stand for the processes
DISRUPTIONS = ["rabbitmq", "postgres", "messaging", "gateway"]


def test_mixed_load_through_restarts_and_kills_loses_nothing_doubles_nothing(make_stack):
    stack = chaos.start(make_stack("postgres", own_broker=True, **chaos.ENV))
    started = time.monotonic()
    out = io.StringIO()
    # 5 members rather than 40: the chat's setup is sign-ins and invites, not what is measured
    rows = chaos.run(stack, DISRUPTIONS, members=5, settle=2.0, out=out)
    print(out.getvalue())
    assert [r.disruption for r in rows] == DISRUPTIONS
    for row in rows:
        assert sum(row.ops.values()), (row, out.getvalue())  # the load went on into each disruption
        assert (row.lost, row.doubled) == (0, 0), out.getvalue()
        assert row.recovered < 60, out.getvalue()
    assert sum(row.ops["webhook"] for row in rows), out.getvalue()  # webhooks were part of the load
    assert time.monotonic() - started < 150, "keep the check bounded"
