"""The SFU and the calls service over RabbitMQ, with pika's asyncio adapter
(nameko's eventlet and asyncio do not share a process).

Up: media facts (``sfu.ParticipantConnected`` ...) published with publisher
confirms; while the broker is away they wait in memory, in order, and go when
it is back. Down: calls's control events from its outbox, on this node's own
durable queue, acknowledged only after they were applied. The node's name is
stable across restarts, so a restarted node consumes its queue again; a node
that is gone for good loses its queue ``expires`` seconds after its last
consumer left (``x-expires``), instead of a queue collecting commands forever.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable

import pika
from pika.adapters.asyncio_connection import AsyncioConnection

from shared.bus.naming import event_exchange
from shared.bus.publisher import ConfirmingPublisher, OutgoingMessage, PublishError
from shared.bus.queues import own_queue_arguments
from shared.contracts import get_contract, make_event, parse_event

log = logging.getLogger("sfu")

COMMANDS = ("ParticipantLeft", "ParticipantMuted", "PermissionsChanged", "BreakoutsChanged", "RecordingChanged",
            "CallEnded")


def command_queue(node: str) -> str:
    return f"sfu.{node}.commands"


class FactPublisher:
    def __init__(self, amqp_uri: str, node: str):
        self.node = node
        self.publisher = ConfirmingPublisher(amqp_uri, [event_exchange("sfu")])
        self.queue: asyncio.Queue[OutgoingMessage] = asyncio.Queue()
        self.task: asyncio.Task | None = None
        self.stalled = False  # the last publish failed: the broker is away
        self.sequence = 0  # the last fact's number: rising, from the clock, so a restarted node goes on rising

    def publish(self, name: str, **data) -> None:
        event_type = f"sfu.{name}.v1"
        # contracts without a node (RecordingWritten) drop it when the data is dumped
        call_id = data.get("call_id")
        # numbered: its facts reach calls through separate queues (a connect and a disconnect in any order), and
        # calls sets aside one older than the node's last it applied for that person (Call.fact_outdated)
        self.sequence = max(self.sequence + 1, time.time_ns())
        event = make_event(event_type, {**data, "node": self.node}, event_id=f"sfu:{self.node}:{uuid.uuid4()}",
                           subject=str(call_id) if call_id is not None else None, sequence=self.sequence)
        self.queue.put_nowait(OutgoingMessage(exchange=event.contract.exchange, routing_key=event.contract.routing_key,
                                              body=event.to_json(), message_id=event.id, type=event.type))

    def heartbeat(self, **data) -> bool:
        """``sfu.NodeHeartbeat``, unless facts are waiting for the broker: a late heartbeat says nothing."""
        if self.stalled or not self.queue.empty():
            return False
        self.publish("NodeHeartbeat", **data)
        return True

    def start(self) -> None:
        self.task = asyncio.ensure_future(self.run())

    async def run(self) -> None:
        pending: list[OutgoingMessage] = []
        while True:
            if not pending:
                pending.append(await self.queue.get())
            while not self.queue.empty():
                pending.append(self.queue.get_nowait())
            try:
                if not self.publisher.is_open:
                    await self.publisher.connect()
                await self.publisher.publish_batch(pending)
                pending = []
                self.stalled = False
            except (TimeoutError, PublishError, OSError, pika.exceptions.AMQPError) as exc:
                self.stalled = True
                log.warning("facts not published yet", extra={"error": str(exc), "count": len(pending)})
                await asyncio.sleep(1)

    async def flush(self, timeout: float = 5) -> None:
        for _ in range(int(timeout * 20)):
            if self.queue.empty():
                return
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        if self.task:
            self.task.cancel()
        await self.publisher.close()


class CommandConsumer:
    """Consumes calls's control events for this node; ``apply`` is awaited before the ack."""

    def __init__(self, amqp_uri: str, node: str, apply: Callable[[str, dict], Awaitable[None]],
                 expires: float = 600):
        self.params = pika.URLParameters(amqp_uri)
        self.expires_ms = int(expires * 1000)
        self.params.heartbeat = 30
        self.node = node
        self.apply = apply
        self.connection: AsyncioConnection | None = None
        self.ready = asyncio.Event()
        self.stopping = False
        self.inbox: asyncio.Queue = asyncio.Queue()

    async def run(self) -> None:
        worker = asyncio.ensure_future(self.work())
        try:
            await self._run()
        finally:
            worker.cancel()

    async def _run(self) -> None:
        while not self.stopping:
            closed = asyncio.get_running_loop().create_future()
            try:
                await self._connect(closed)
                await closed
            except (TimeoutError, OSError, pika.exceptions.AMQPError) as exc:
                log.warning("commands: broker unreachable", extra={"error": str(exc)})
            self.ready.clear()
            if not self.stopping:
                await asyncio.sleep(1)

    async def _connect(self, closed: asyncio.Future) -> None:
        loop = asyncio.get_running_loop()
        opened: asyncio.Future = loop.create_future()

        def on_close(conn, reason):
            if not closed.done():
                closed.set_result(reason)
            if not opened.done():
                opened.set_exception(ConnectionError(str(reason)))

        self.connection = AsyncioConnection(
            self.params, on_open_callback=lambda c: c.channel(on_open_callback=lambda ch: opened.set_result(ch)),
            on_open_error_callback=lambda c, err: opened.done() or opened.set_exception(ConnectionError(str(err))),
            on_close_callback=on_close, custom_ioloop=loop)
        channel = await asyncio.wait_for(opened, timeout=15)
        waiting: dict[int, asyncio.Future] = {}  # channel number -> the step it waits for

        def on_channel_close(ch, reason):
            future = waiting.get(ch.channel_number)
            if future is not None and not future.done():
                future.set_exception(reason if isinstance(reason, Exception) else ConnectionError(str(reason)))

        async def new_channel():
            ready: asyncio.Future = loop.create_future()
            self.connection.channel(on_open_callback=lambda ch: ready.set_result(ch))
            ch = await asyncio.wait_for(ready, timeout=15)
            ch.add_on_close_callback(on_channel_close)
            return ch

        channel.add_on_close_callback(on_channel_close)

        async def step(method, **kwargs):
            done: asyncio.Future = loop.create_future()
            waiting[method.__self__.channel_number] = done
            method(callback=lambda frame: done.done() or done.set_result(frame), **kwargs)
            return await asyncio.wait_for(done, timeout=15)

        queue = command_queue(self.node)
        exchange = event_exchange("calls")
        await step(channel.exchange_declare, exchange=exchange, exchange_type="topic", durable=True)
        arguments = own_queue_arguments(**{"x-expires": self.expires_ms})
        try:
            await step(channel.queue_declare, queue=queue, durable=True, arguments=arguments)
        except pika.exceptions.ChannelClosedByBroker as exc:
            if exc.reply_code != 406:  # PRECONDITION_FAILED: the queue exists with other arguments
                raise
            # From before the expiry (or with another one): replaced when empty, else used as it is.
            log.warning("commands: the node's queue has other arguments", extra={"queue": queue})
            channel = await new_channel()
            try:
                await step(channel.queue_delete, queue=queue, if_empty=True)
                await step(channel.queue_declare, queue=queue, durable=True, arguments=arguments)
            except pika.exceptions.ChannelClosedByBroker:
                channel = await new_channel()
                await step(channel.queue_declare, queue=queue, passive=True)
        for name in COMMANDS:
            await step(channel.queue_bind, queue=queue, exchange=exchange,
                       routing_key=get_contract(f"calls.{name}.v1").routing_key)
        await step(channel.basic_qos, prefetch_count=50)
        channel.basic_consume(queue=queue, on_message_callback=self._on_message)
        self.ready.set()

    def _on_message(self, channel, method, properties, body) -> None:
        self.inbox.put_nowait((channel, method.delivery_tag, body))

    async def work(self) -> None:
        """Apply commands one at a time, in the order calls published them."""
        while True:
            channel, tag, body = await self.inbox.get()
            try:
                event = parse_event(body)
                await self.apply(event.contract.name, event.data)
            except Exception:  # a command that cannot apply must not block the queue
                log.exception("command failed", extra={"body": body[:500].decode(errors="replace")})
            if channel.is_open:
                channel.basic_ack(tag)

    async def close(self) -> None:
        self.stopping = True
        if self.connection and not (self.connection.is_closed or self.connection.is_closing):
            self.connection.close()

