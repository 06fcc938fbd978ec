"""Publishing with pipelined publisher confirms on pika's asyncio adapter.

A batch is published in one go and the call returns once the broker has
confirmed every message (it has taken responsibility: persisted to the durable
queues it was routed to). A nack, a returned (unroutable) message or a lost
connection fails the whole batch, and the caller publishes it again: at least
once.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pika
from pika.adapters.asyncio_connection import AsyncioConnection
from pika.spec import Basic

from shared.observability.logging import get_logger

log = get_logger("shared.bus.publisher")


class PublishError(Exception):
    """The broker did not confirm a message, or the connection broke."""


@dataclass
class OutgoingMessage:
    exchange: str
    routing_key: str
    body: bytes
    message_id: str
    type: str
    headers: dict[str, Any] = field(default_factory=dict)
    content_type: str = "application/json"


class _BatchingConnection(AsyncioConnection):
    """pika's asyncio connection whose frames emitted while ``batch`` is a list go to the transport as ONE write
    when the batch ends (issue #17, the relay's CPU and the broker's): pika's transport sends each write with a
    ``send`` of its own, and a message is three (method, header, body), so a batch of n was 3n sends, 3n TCP
    segments for the broker to take in. ``_adapter_emit_data`` is pika's hook for a connection's outgoing data."""

    batch: list[bytes] | None = None

    def _adapter_emit_data(self, data: bytes) -> None:
        if self.batch is not None:
            self.batch.append(data)
        else:
            super()._adapter_emit_data(data)

    def end_batch(self) -> None:
        batch, self.batch = self.batch, None
        if batch:
            super()._adapter_emit_data(b"".join(batch))


class ConfirmingPublisher:
    def __init__(self, amqp_uri: str, exchanges: list[str], *, heartbeat: int = 30):
        self.params = pika.URLParameters(amqp_uri)
        self.params.heartbeat = heartbeat
        self.params.connection_attempts = 1
        self.exchanges = exchanges
        self.connection: _BatchingConnection | None = None
        self.channel = None
        self._seq = 0
        self._pending: dict[int, asyncio.Future] = {}
        self._returned: set[str] = set()
        self._closed: asyncio.Future | None = None

    @property
    def is_open(self) -> bool:
        return bool(self.connection and self.connection.is_open and self.channel and self.channel.is_open)

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        opened: asyncio.Future = loop.create_future()
        self._closed = loop.create_future()

        def on_open(conn):
            conn.channel(on_open_callback=lambda ch: opened.done() or opened.set_result(ch))

        def on_open_error(conn, err):
            if not opened.done():
                opened.set_exception(PublishError(f"cannot connect to the broker: {err}"))

        def on_close(conn, reason):
            self._fail_pending(PublishError(f"connection closed: {reason}"))
            if self._closed and not self._closed.done():
                self._closed.set_result(reason)

        self.connection = _BatchingConnection(
            self.params,
            on_open_callback=on_open,
            on_open_error_callback=on_open_error,
            on_close_callback=on_close,
            custom_ioloop=loop,
        )
        channel = await asyncio.wait_for(opened, timeout=15)
        channel.add_on_close_callback(lambda ch, reason: self._fail_pending(PublishError(f"channel closed: {reason}")))
        channel.add_on_return_callback(self._on_return)
        confirm_ok: asyncio.Future = loop.create_future()
        channel.confirm_delivery(ack_nack_callback=self._on_confirm, callback=lambda frame: confirm_ok.set_result(True))
        await asyncio.wait_for(confirm_ok, timeout=15)
        for name in self.exchanges:
            declared: asyncio.Future = loop.create_future()
            channel.exchange_declare(
                exchange=name,
                exchange_type="topic",
                durable=True,
                callback=lambda frame, f=declared: f.set_result(True),
            )
            await asyncio.wait_for(declared, timeout=15)
        self.channel = channel
        self._seq = 0

    def _on_return(self, channel, method, properties, body) -> None:
        # Nobody is bound for this routing key: not an error of the publisher,
        # but worth a log line (consumers' queues are declared before relays run).
        log.warning(
            "event unroutable", extra={"exchange": method.exchange, "routing_key": method.routing_key,
                                       "message_id": properties.message_id}
        )

    def _on_confirm(self, frame) -> None:
        method = frame.method
        tag = method.delivery_tag
        tags = [t for t in self._pending if t <= tag] if method.multiple else [tag]
        for t in tags:
            future = self._pending.pop(t, None)
            if future is None or future.done():
                continue
            if isinstance(method, Basic.Ack):
                future.set_result(True)
            else:
                future.set_exception(PublishError(f"broker nacked message {t}"))

    def _fail_pending(self, exc: Exception) -> None:
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(exc)

    async def publish_batch(self, messages: list[OutgoingMessage], timeout: float = 30) -> None:
        """Publish persistent messages and wait until the broker confirms all."""
        confirmed = self.publish(messages)
        try:
            await asyncio.wait_for(confirmed, timeout=timeout)
        except TimeoutError:
            raise PublishError(f"no confirm within {timeout}s") from None

    def publish(self, messages: list[OutgoingMessage]) -> asyncio.Future:
        """Publish persistent messages without waiting: the future is done when the broker has confirmed them
        all, or failed (``PublishError``) when it nacked one or the connection broke. The next batch may be
        published before this one is confirmed (the outbox relay's pipeline); RabbitMQ may confirm them in
        another order, so whoever records progress goes by the oldest batch not yet confirmed."""
        if not self.is_open:
            raise PublishError("not connected")
        loop = asyncio.get_running_loop()
        futures = []
        self.connection.batch = []  # the batch's frames in one write (_BatchingConnection)
        try:
            self._publish_each(messages, loop, futures)
        finally:
            self.connection.end_batch()
        return asyncio.gather(*futures)

    def _publish_each(self, messages: list[OutgoingMessage], loop: asyncio.AbstractEventLoop,
                      futures: list[asyncio.Future]) -> None:
        for message in messages:
            self._seq += 1
            future = loop.create_future()
            self._pending[self._seq] = future
            futures.append(future)
            self.channel.basic_publish(
                exchange=message.exchange,
                routing_key=message.routing_key,
                body=message.body,
                properties=pika.BasicProperties(
                    delivery_mode=pika.DeliveryMode.Persistent,
                    content_type=message.content_type,
                    message_id=message.message_id,
                    type=message.type,
                    headers=message.headers or None,
                ),
                mandatory=True,
            )

    async def close(self) -> None:
        if self.connection and not (self.connection.is_closed or self.connection.is_closing):
            self.connection.close()
            if self._closed:
                try:
                    await asyncio.wait_for(self._closed, timeout=5)
                except TimeoutError:
                    pass
