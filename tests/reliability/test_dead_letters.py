"""A handler that keeps failing is retried with back-off, then dead-lettered
with its error; once fixed, a replay applies the event exactly once."""

import pytest

from shared.bus.dlq import list_dead_letters, replay
from tests.helpers import eventually, metric
from tests.reliability.conftest import LEDGER_QUEUE

pytestmark = pytest.mark.reliability


def test_failing_consumer_dead_letters_then_replay_applies_once(pipeline, tmp_path):
    flag = tmp_path / "ledger-is-broken"
    flag.touch()
    pipeline.start_ledger(SFERA_TEST_LEDGER_FAIL_FLAG=str(flag))
    pipeline.start_relay()
    (user,) = pipeline.register(1)
    amqp = pipeline.stack.amqp_uri

    letters = eventually(lambda: list_dead_letters(LEDGER_QUEUE, amqp), timeout=30, what="a dead letter")
    assert len(letters) == 1
    letter = letters[0]
    assert letter.attempts == 3  # max_attempts of the ledger's handler
    assert "HandlerBug" in letter.error and str(user) in letter.error
    assert letter.type == "identity.UserRegistered.v1"
    assert letter.queue == LEDGER_QUEUE
    assert metric(pipeline.ledger_metrics, "sfera_events_consumed_total", outcome="retried") == 2
    assert metric(pipeline.ledger_metrics, "sfera_events_consumed_total", outcome="dead_lettered") == 1
    assert pipeline.tallies([user]) == [0]
    # Listing does not consume.
    assert len(list_dead_letters(LEDGER_QUEUE, amqp)) == 1

    flag.unlink()  # the fix
    assert replay(LEDGER_QUEUE, amqp_uri=amqp) == 1
    eventually(lambda: pipeline.tallies([user]) == [1], what="the replayed event to be applied")
    assert list_dead_letters(LEDGER_QUEUE, amqp) == []
    assert replay(LEDGER_QUEUE, amqp_uri=amqp) == 0
    assert pipeline.tallies([user]) == [1]


def test_a_malformed_event_goes_straight_to_the_dead_letters(pipeline):
    import pika

    pipeline.start_ledger()
    connection = pika.BlockingConnection(pika.URLParameters(pipeline.stack.amqp_uri))
    channel = connection.channel()
    channel.basic_publish("identity.events", "UserRegistered.v1", b'{"specversion": "1.0", "id": "bad"}',
                          pika.BasicProperties(content_type="application/json", message_id="bad", delivery_mode=2))
    connection.close()
    letters = eventually(lambda: list_dead_letters(LEDGER_QUEUE, pipeline.stack.amqp_uri), what="a dead letter")
    assert letters[0].attempts == 1
    assert "ContractError" in letters[0].error
