"""The relay dies (SIGKILL) after the broker confirmed a batch and before it
recorded its position: after a restart it publishes the batch again, and the
consumer applies each event once."""

import pytest

from tests.helpers import eventually, metric

pytestmark = pytest.mark.reliability


def test_relay_killed_between_publish_and_position_delivers_again_and_applies_once(pipeline):
    pipeline.start_ledger()
    users = pipeline.register(5)

    pipeline.start_relay(wait=False, SFERA_FAULT_RELAY_KILL_AFTER_PUBLISH="1")
    assert pipeline.stack.wait_exit("identity-relay") == -9  # SIGKILL, by the fault injection
    pipeline.stack.stop_process("identity-relay")
    assert pipeline.relay_position is None, "the position must not have been recorded"

    eventually(lambda: pipeline.tallies(users) == [1] * 5, what="first delivery applied")

    pipeline.start_relay()
    eventually(lambda: metric(pipeline.ledger_metrics, "sfera_events_consumed_total", outcome="duplicate") == 5,
               what="the republished copies to arrive as duplicates")
    assert pipeline.tallies(users) == [1] * 5
    assert metric(pipeline.ledger_metrics, "sfera_events_consumed_total", outcome="applied") == 5
    head = pipeline.identity.process_recorder.max_notification_id()
    eventually(lambda: pipeline.relay_position == head, what="relay position at the head of the log")
