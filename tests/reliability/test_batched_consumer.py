"""Issue #17, faster event path: a consumer's deliveries in flight share transactions (group commit,
shared/store/group.py) against the real RabbitMQ and PostgreSQL. A backlog is applied in fewer commits than
events, each event once; a poison event among them fails alone and dead-letters while the others apply once; a
consumer killed after a shared commit and before its acks gets the deliveries again and applies none twice."""

import pika
import pytest

from shared.bus.dlq import list_dead_letters
from tests.fixtures.ledger import Tally
from tests.helpers import eventually, metric
from tests.reliability.conftest import LEDGER_QUEUE, LEDGER_SERVICE

pytestmark = pytest.mark.reliability

N = 30


def queue_backlog(pipeline, n: int) -> list:
    """n registrations published into the ledger's queue while the ledger is down."""
    pipeline.start_relay()
    users = pipeline.register(n)
    head = pipeline.identity.process_recorder.max_notification_id()
    eventually(lambda: pipeline.relay_position == head, what="every event published (confirmed, queued)")
    return users


def processed_ids(pipeline) -> int:
    recorder = pipeline.ledger.process_recorder
    with recorder.datastore.transaction(commit=False) as curs:
        curs.execute(f"SELECT count(*) AS n FROM {recorder.datastore.schema}.{recorder.tracking_table_name} "
                     "WHERE application_name LIKE 'evt:%%'")
        return curs.fetchone()["n"]


def applied_commits(pipeline) -> tuple[float, float]:
    return (metric(pipeline.ledger_metrics, "sfera_store_group_saves_count", service="ledger"),
            metric(pipeline.ledger_metrics, "sfera_store_group_saves_sum", service="ledger"))


def test_a_backlog_is_applied_in_shared_transactions_each_event_once(pipeline):
    users = queue_backlog(pipeline, N)
    pipeline.start_ledger()
    eventually(lambda: pipeline.tallies(users) == [1] * N, what="every event applied")
    eventually(lambda: applied_commits(pipeline)[1] == N, what="every save counted")
    transactions, saves = applied_commits(pipeline)
    assert saves == N and transactions < N, f"{transactions} transactions for {N} events: none shared"
    assert metric(pipeline.ledger_metrics, "sfera_events_consumed_total", outcome="applied") == N
    assert processed_ids(pipeline) == N  # one tracking row per event, recorded with its effect


def test_a_backlog_is_acked_together_each_delivery_once_none_left_unacked(pipeline):
    """The workers of a shared transaction finish together: their deliveries are acknowledged by fewer basic.acks
    than deliveries (``multiple``, shared/bus/delivery.py), and none is left unacknowledged or acked twice (the
    broker closes a channel on an unknown delivery tag: the deliveries would come again as duplicates)."""
    users = queue_backlog(pipeline, N)
    pipeline.start_ledger()
    eventually(lambda: pipeline.tallies(users) == [1] * N, what="every event applied")
    eventually(lambda: metric(pipeline.ledger_metrics, "sfera_consumer_acks_sum", service="ledger") == N,
               what="every delivery acked")
    frames = metric(pipeline.ledger_metrics, "sfera_consumer_acks_count", service="ledger")
    assert frames < N, f"{frames} basic.acks for {N} deliveries: none sent together"
    assert metric(pipeline.ledger_metrics, "sfera_events_consumed_total", outcome="duplicate") == 0
    pipeline.stack.stop_process("ledger")  # what it had not acked would be ready again
    connection = pika.BlockingConnection(pika.URLParameters(pipeline.stack.amqp_uri))
    try:
        assert connection.channel().queue_declare(LEDGER_QUEUE, passive=True).method.message_count == 0
    finally:
        connection.close()
    assert pipeline.tallies(users) == [1] * N


def test_a_poison_event_in_a_shared_transaction_dead_letters_alone_the_others_apply_once(pipeline, tmp_path):
    users = queue_backlog(pipeline, N)
    poison = users[N // 2]
    pipeline.ledger.save(Tally(user_id=poison))  # its count will save a new tally over this one: a conflict
    poison_list = tmp_path / "poison"
    poison_list.write_text(str(poison))
    pipeline.start_ledger(SFERA_TEST_LEDGER_POISON=str(poison_list))

    letters = eventually(lambda: list_dead_letters(LEDGER_QUEUE, pipeline.stack.amqp_uri), timeout=60,
                         what="the poison event dead-lettered")
    assert len(letters) == 1 and str(poison) in letters[0].body.decode()
    assert letters[0].attempts == 3 and letters[0].error.startswith("IntegrityError")
    others = [u for u in users if u != poison]
    eventually(lambda: pipeline.tallies(others) == [1] * (N - 1), what="the others applied")
    assert pipeline.tallies([poison]) == [0]
    assert metric(pipeline.ledger_metrics, "sfera_events_consumed_total", outcome="applied") == N - 1
    assert metric(pipeline.ledger_metrics, "sfera_events_consumed_total", outcome="duplicate") == 0
    assert metric(pipeline.ledger_metrics, "sfera_events_consumed_total", outcome="retried") == 2
    transactions, saves = applied_commits(pipeline)
    assert transactions < saves, "no transaction was shared"
    # The poison's first attempt was in a shared transaction (the backlog was all in flight): that one failed
    # and each of its saves was written again alone.
    assert metric(pipeline.ledger_metrics, "sfera_store_group_failures_total", service="ledger") >= 1


def test_killed_after_a_shared_commit_before_its_acks_redelivers_and_applies_nothing_twice(pipeline):
    users = queue_backlog(pipeline, N)
    pipeline.stack.start_service("ledger", LEDGER_SERVICE, port=pipeline.ledger_port,
                                 SFERA_FAULT_CONSUMER_KILL_AFTER_COMMIT="1")
    assert pipeline.stack.wait_exit("ledger") == -9  # SIGKILL, by the fault injection, after its first commit
    pipeline.stack.stop_process("ledger")
    committed = sum(pipeline.tallies(users))
    assert committed >= 1

    pipeline.start_ledger()
    eventually(lambda: pipeline.tallies(users) == [1] * N, what="every event applied")
    eventually(lambda: metric(pipeline.ledger_metrics, "sfera_events_consumed_total", outcome="duplicate")
               >= committed, what="the committed, unacked deliveries to come again as duplicates")
    assert metric(pipeline.ledger_metrics, "sfera_events_consumed_total", outcome="applied") == N - committed
    assert pipeline.tallies(users) == [1] * N
    assert processed_ids(pipeline) == N
