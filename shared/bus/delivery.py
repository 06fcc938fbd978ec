"""The queue consumer of a service's event handlers and RPCs (issue #17, "faster event path"): nameko's, with a
delivery's acknowledgement sent together with those of the deliveries finished at the same moment, and an event's
delivery handed to its worker without a green thread of its own between.

- Acks together (``SFERA_CONSUMER_ACKS=together``, the default): a consumer's workers whose saves shared one
  transaction (shared/store/group.py) finish together, and each sent a ``basic.ack`` of its own (a frame, a
  write, and the broker's work on it). Here an ack asked for is sent once the workers already woken have run:
  one ``basic.ack`` with ``multiple`` for the longest run of delivery tags from the channel's oldest unsettled
  one that are all finished (acked or requeued), and one each for finished deliveries after a gap (never later:
  the prefetch window waits for them). A tag the consumer never saw finish, or never saw at all, ends the run,
  so ``multiple`` never acknowledges a delivery before its worker asked. Still acked only after its effect
  committed (at least once; consumers drop copies by event id). ``each``: every ack at once, alone (the baseline).
- Handed over at once (``SFERA_CONSUMER_DISPATCH=direct``, the default): nameko's queue consumer started a green
  thread for each delivery only to start the worker's; an event handler's delivery is given its worker from the
  consumer's thread while the service has a free worker (starting one then never waits). ``thread``: nameko's way.
"""

from __future__ import annotations

from typing import Any

import eventlet
from kombu.exceptions import ConnectionError as AmqpConnectionError  # py-amqp's, as nameko catches it
from kombu.transport.pyamqp import Channel as AmqpChannel
from nameko.messaging import QueueConsumer

from shared.config import env_str
from shared.observability import metrics

ACKS = ("together", "each")
DISPATCH = ("direct", "thread")


class ChannelAcks:
    """One channel's delivery tags (1, 2, 3 ... in the order the broker delivered them) and their settling."""

    __slots__ = ("acked_to", "settled", "ready")

    def __init__(self) -> None:
        self.acked_to = 0  # every tag up to this one is settled
        self.settled: set[int] = set()  # above it: acked alone or requeued
        self.ready: dict[int, Any] = {}  # above it: finished, its ack not sent yet

    def take(self) -> tuple[Any | None, int, list[Any]]:
        """The message whose tag a ``multiple`` ack covers (with the count it covers) and those to ack alone."""
        last, covered, tag = None, 0, self.acked_to
        while True:
            following = tag + 1
            if following in self.ready:
                last, covered = self.ready.pop(following), covered + 1
            elif following in self.settled:
                self.settled.discard(following)
            else:
                break
            tag = following
        self.acked_to = tag
        alone = list(self.ready.values())
        self.settled.update(self.ready)
        self.ready.clear()
        return last, covered, alone


class AckBatch:
    """Acks asked for by a queue consumer's workers, sent together after the workers woken with them have run."""

    def __init__(self, service: str, together: bool = True):
        self.service = service
        self.together = together
        self._channels: dict[Any, ChannelAcks] = {}
        self._scheduled = False
        self._flushing = False  # sending: another flush meanwhile only asks it to go round again (frames in order)
        self._again = False

    def ack(self, message: Any) -> None:
        channel = message.channel
        if not self.together or not isinstance(channel, AmqpChannel):  # kombu's memory transport acks one tag
            _ack(message)
            self._observe(1)
            return
        self._channels.setdefault(channel, ChannelAcks()).ready[message.delivery_tag] = message
        if not self._scheduled:
            self._scheduled = True
            eventlet.spawn_n(self._flush_soon)

    def requeued(self, message: Any) -> None:
        """``message`` was requeued (rejected): its tag no longer ends a run of finished ones."""
        if self.together and isinstance(message.channel, AmqpChannel):
            acks = self._channels.setdefault(message.channel, ChannelAcks())
            if message.delivery_tag > acks.acked_to:
                acks.settled.add(message.delivery_tag)

    def _flush_soon(self) -> None:
        eventlet.sleep(0)  # the workers their transaction's commit woke with this one ask for theirs first
        self.flush()

    def flush(self) -> None:
        """Sends every ack asked for so far (the consumer's loop calls it too, last before it stops)."""
        self._scheduled = False
        if self._flushing:
            self._again = True
            return
        self._flushing = True
        try:
            self._again = True
            while self._again:
                self._again = False
                self._send()
        finally:
            self._flushing = False

    def _send(self) -> None:
        for channel, acks in list(self._channels.items()):
            if not channel.connection:  # gone: the broker delivers them again
                del self._channels[channel]
                continue
            last, covered, alone = acks.take()
            if last is not None:
                _ack(last, multiple=covered > 1)
                self._observe(covered)
            for message in alone:
                _ack(message)
                self._observe(1)

    def _observe(self, deliveries: int) -> None:
        metrics.consumer_acks.labels(self.service).observe(deliveries)


def _ack(message: Any, multiple: bool = False) -> None:
    # as nameko's: a message whose connection is gone is the broker's again
    if message.channel.connection:
        try:
            message.ack(multiple=multiple)
        except (AmqpConnectionError, OSError):  # closing meanwhile: the broker delivers them again
            pass


class DeliveryQueueConsumer(QueueConsumer):
    """nameko's queue consumer with acks sent together and event deliveries handed to their workers directly."""

    def setup(self) -> None:
        super().setup()
        acks = env_str("SFERA_CONSUMER_ACKS", "together")
        dispatch = env_str("SFERA_CONSUMER_DISPATCH", "direct")
        if acks not in ACKS or dispatch not in DISPATCH:
            raise ValueError(f"SFERA_CONSUMER_ACKS={acks!r} (one of {', '.join(ACKS)}), "
                             f"SFERA_CONSUMER_DISPATCH={dispatch!r} (one of {', '.join(DISPATCH)})")
        self.acks = AckBatch(self.container.service_name, together=acks == "together")
        self.direct = dispatch == "direct"

    def handle_message(self, provider, body, message) -> None:
        # spawn_worker waits for a free worker, never when one is free: then the consumer's thread can call it
        if self.direct and getattr(provider, "direct_delivery", False) and self.container._worker_pool.free() > 0:
            provider.handle_message(body, message)
        else:
            super().handle_message(provider, body, message)

    def ack_message(self, message) -> None:
        self.acks.ack(message)

    def requeue_message(self, message) -> None:
        self.acks.requeued(message)
        super().requeue_message(message)

    def on_iteration(self) -> None:
        self.acks.flush()
        super().on_iteration()
