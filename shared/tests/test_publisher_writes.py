"""Issue #17, "faster event path": the outbox relay's publisher hands a batch to the socket in one write (pika's
asyncio transport sent each frame of each message, method, header and body, with a send of its own)."""

from __future__ import annotations

import asyncio
import itertools

import pika
import pytest

from shared.bus.publisher import ConfirmingPublisher, OutgoingMessage

pytestmark = pytest.mark.integration

_vhosts = itertools.count()


@pytest.fixture
def amqp(rabbitmq) -> str:
    vhost = f"writes{next(_vhosts)}"
    rabbitmq.add_vhost(vhost)
    yield f"{rabbitmq.amqp_uri.rstrip('/')}/{vhost}"
    rabbitmq.ctl("delete_vhost", vhost)


class CountingSocket:
    """The transport's socket, counting its sends."""

    def __init__(self, sock):
        self._sock = sock
        self.sends = 0

    def send(self, data, *args):
        self.sends += 1
        return self._sock.send(data, *args)

    def __getattr__(self, name):
        return getattr(self._sock, name)


def test_a_batch_goes_to_the_broker_in_one_write_and_is_confirmed_whole(amqp):
    setup = pika.BlockingConnection(pika.URLParameters(amqp))
    channel = setup.channel()
    channel.exchange_declare("writes.events", exchange_type="topic", durable=True)
    channel.queue_declare("writes.q", durable=True)
    channel.queue_bind("writes.q", "writes.events", routing_key="#")

    async def publish() -> int:
        publisher = ConfirmingPublisher(amqp, ["writes.events"])
        await publisher.connect()
        transport = publisher.connection._transport  # pika's (the test looks inside)
        counting = transport._sock = CountingSocket(transport._sock)
        messages = [OutgoingMessage("writes.events", "a.b", f'{{"n": {n}}}'.encode(), f"id{n}", "t")
                    for n in range(10)]
        await publisher.publish_batch(messages)  # returns once the broker confirmed all ten
        sends = counting.sends
        await publisher.publish_batch(messages[:1])
        await publisher.close()
        return sends

    assert asyncio.run(publish()) == 1  # was 30: three frames a message, a send each
    got = [channel.basic_get("writes.q", auto_ack=True)[2] for _ in range(11)]
    assert got == [f'{{"n": {n}}}'.encode() for n in [*range(10), 0]]  # all of them, in order
    setup.close()
