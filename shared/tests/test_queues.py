"""Every consumer queue, its retry queues and its dead-letter queue are quorum queues (issue #18), declared so
by topology, by the consumer and by the dead-letter tool alike (a second declaration with other arguments is
refused by RabbitMQ), and deploy/rabbitmq/definitions.json says the same; a classic queue from before is
declared again as quorum with its messages kept. Against the real RabbitMQ of the test session."""

from __future__ import annotations

import itertools

import pika
import pytest

from shared.bus import queues
from shared.bus.dlq import list_dead_letters
from shared.bus.naming import dead_letter_queue
from shared.bus.topology import DEFINITIONS, declare, definitions, platform_bindings
from tests.reliability.conftest import LEDGER_QUEUE, LEDGER_SERVICE

_vhosts = itertools.count()


@pytest.fixture
def amqp(rabbitmq) -> str:
    vhost = f"queues{next(_vhosts)}"
    rabbitmq.add_vhost(vhost)
    yield f"{rabbitmq.amqp_uri.rstrip('/')}/{vhost}", vhost
    rabbitmq.ctl("delete_vhost", vhost)


def queue_types(rabbitmq, vhost: str) -> dict[str, str]:
    out = rabbitmq.ctl("list_queues", "-p", vhost, "name", "type", "--quiet", "--no-table-headers")
    return dict(line.split() for line in out.splitlines() if line.strip())


@pytest.mark.unit
def test_quorum_is_the_default_and_classic_may_be_chosen(monkeypatch):
    monkeypatch.delenv("SFERA_QUEUE_TYPE", raising=False)
    assert queues.durable_arguments() == {"x-queue-type": "quorum"}
    retry = queues.retry_arguments(2.0, back_to="q")
    assert retry["x-dead-letter-strategy"] == "at-least-once" and retry["x-overflow"] == "reject-publish"
    assert (retry["x-message-ttl"], retry["x-dead-letter-routing-key"]) == (2000, "q")
    monkeypatch.setenv("SFERA_QUEUE_TYPE", "classic")
    assert queues.retry_arguments(2.0, back_to="q") == {
        "x-queue-type": "classic", "x-message-ttl": 2000, "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": "q"}
    monkeypatch.setenv("SFERA_QUEUE_TYPE", "mirrored")
    with pytest.raises(ValueError, match="SFERA_QUEUE_TYPE"):
        queues.durable_arguments()


@pytest.mark.unit
def test_the_brokers_definitions_are_what_topology_declares(monkeypatch):
    monkeypatch.delenv("SFERA_QUEUE_TYPE", raising=False)
    text = definitions(platform_bindings())
    assert DEFINITIONS.read_text() == text, "run: .venv/bin/python -m shared.bus.topology --definitions --write"
    assert '"x-queue-type": "classic"' not in text and text.count('"x-queue-type": "quorum"') > 50


def test_topology_declares_every_consumer_retry_and_dead_letter_queue_quorum(rabbitmq, amqp, monkeypatch):
    monkeypatch.delenv("SFERA_QUEUE_TYPE", raising=False)
    uri, vhost = amqp
    bindings = platform_bindings()
    declare(uri, bindings)
    types = queue_types(rabbitmq, vhost)
    expected = {name for b in bindings for name, _ in b.queues()}
    assert any(".retry." in name for name in expected) and any(name.endswith(".dlq") for name in expected)
    assert {name: types.get(name) for name in expected} == dict.fromkeys(expected, "quorum")
    declare(uri, bindings)  # again: the same arguments, accepted
    # the dead-letter tool's declaration agrees with topology's (else RabbitMQ closes its channel)
    assert list_dead_letters(bindings[0].queue, uri) == []


def test_a_classic_queue_from_before_becomes_quorum_with_its_messages(rabbitmq, amqp, monkeypatch):
    monkeypatch.delenv("SFERA_QUEUE_TYPE", raising=False)
    uri, vhost = amqp
    bindings = platform_bindings([LEDGER_SERVICE])
    connection = pika.BlockingConnection(pika.URLParameters(uri))
    channel = connection.channel()
    channel.confirm_delivery()
    for name in (LEDGER_QUEUE, dead_letter_queue(LEDGER_QUEUE)):
        channel.queue_declare(queue=name, durable=True)  # as topology did before
    for n in range(3):
        channel.basic_publish("", LEDGER_QUEUE, f"event {n}".encode(), pika.BasicProperties(
            delivery_mode=2, message_id=f"m{n}"))
    connection.close()

    declare(uri, bindings)

    assert queue_types(rabbitmq, vhost)[LEDGER_QUEUE] == "quorum"
    assert queue_types(rabbitmq, vhost)[dead_letter_queue(LEDGER_QUEUE)] == "quorum"
    connection = pika.BlockingConnection(pika.URLParameters(uri))
    channel = connection.channel()
    got = []
    while (message := channel.basic_get(LEDGER_QUEUE, auto_ack=True))[0] is not None:
        got.append((message[1].message_id, message[2]))
    connection.close()
    assert got == [(f"m{n}", f"event {n}".encode()) for n in range(3)]  # all, in order
    assert f"{LEDGER_QUEUE}.redeclare" not in queue_types(rabbitmq, vhost)


def test_a_queue_of_one_process_is_classic_whatever_the_platforms_queue_type(rabbitmq, amqp, monkeypatch):
    """The gateway's realtime queue and an SFU node's command queue belong to one process: classic, said so
    explicitly (exclusive queues cannot be quorum; a node's queue gains nothing from copies on three brokers)."""
    monkeypatch.setenv("SFERA_QUEUE_TYPE", "quorum")
    uri, vhost = amqp
    with pika.BlockingConnection(pika.URLParameters(uri)) as connection:
        channel = connection.channel()
        channel.queue_declare("sfu.node-a.commands", durable=True, arguments=queues.own_queue_arguments(
            **{"x-expires": 60_000}))
        channel.queue_declare("realtime.own", exclusive=True, auto_delete=True,
                              arguments=queues.own_queue_arguments())
        types = queue_types(rabbitmq, vhost)
    assert types["sfu.node-a.commands"] == "classic" and types["realtime.own"] == "classic"
    assert queues.durable_arguments() == {"x-queue-type": "quorum"}
