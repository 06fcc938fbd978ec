"""The consumer side: a nameko event handler that validates the CloudEvents
envelope, hands the handler a parsed ``CloudEvent``, and never drops a failure.

- Exactly-once effect: the handler applies the event through
  ``ServiceApplication.process_once`` (the effect and the event id are saved in
  one transaction), so a redelivered event changes nothing.
- Retries with back-off: a failed message is republished (with confirms) to a
  per-attempt delay queue ``<queue>.retry.<n>`` whose TTL dead-letters it back
  into the handler's queue; then the original is acked.
- Dead letters: after ``max_attempts`` (or at once for a malformed envelope)
  it goes to ``<queue>.dlq`` with the error in its headers, where
  ``python -m shared.bus.dlq`` lists and replays it.

nameko's own ``event_handler`` acks and drops a failed message (or requeues it
in a hot loop): docs/architecture.md, "Known pitfalls".
"""

from __future__ import annotations

import os
import signal
import time
from functools import partial
from typing import Any

from kombu import Exchange, Queue
from nameko.amqp.publish import Publisher
from nameko.constants import AMQP_URI_CONFIG_KEY
from nameko.events import EventHandler
from nameko.exceptions import ContainerBeingKilled

from shared.bus.delivery import DeliveryQueueConsumer
from shared.bus.lag import observe_applied
from shared.bus.naming import (
    H_ATTEMPT,
    H_ERROR,
    H_ERROR_TYPE,
    H_FAILED_AT,
    H_QUEUE,
    dead_letter_queue,
)
from shared.bus.queues import durable_arguments, retry_queues
from shared.bus.trace import stage_trace
from shared.clock import utcnow
from shared.contracts import CloudEvent, ContractError, get_contract, parse_event
from shared.errors import NotYet
from shared.observability import metrics
from shared.observability.logging import get_logger

log = get_logger("shared.bus.consumer")


DEFAULT_BACKOFF = (0.5, 2.0, 10.0, 60.0)
DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_EXCHANGE = Exchange("")
# Fault injection for the reliability tests: SIGKILL the service after an event's effect committed and before its
# delivery is acked (the broker then delivers it again: a duplicate).
FAULT_KILL_AFTER_COMMIT = "SFERA_FAULT_CONSUMER_KILL_AFTER_COMMIT"


class ReliableEventHandler(EventHandler):
    """``@consume_event("identity.UserRegistered.v1")`` on a nameko service method."""

    queue_consumer = DeliveryQueueConsumer()  # acks sent together; RPCs share it (shared/rpc.py)
    direct_delivery = True  # its deliveries go to their workers from the consumer's thread (shared/bus/delivery.py)

    def __init__(
        self,
        event_type: str,
        *,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        backoff: tuple[float, ...] = DEFAULT_BACKOFF,
        **kwargs: Any,
    ):
        entry = get_contract(event_type)
        super().__init__(entry.service, entry.routing_key, **kwargs)
        self.contract_type = event_type
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.publisher: Publisher | None = None

    def setup(self) -> None:
        super().setup()
        # nameko's own declaration of the queue, with the arguments topology declared it with (shared.bus.queues)
        self.queue.queue_arguments = durable_arguments()
        self.publisher = Publisher(self.container.config[AMQP_URI_CONFIG_KEY], use_confirms=True)
        self.trace = stage_trace()  # bench.pipeline's stages (shared/bus/trace.py); None in production

    @property
    def queue_name(self) -> str:
        return self.queue.name

    def retry_queues(self, queue: str | None = None) -> list[tuple[str, dict]]:
        """Where a message of this handler's queue waits after each failed attempt but the last."""
        return retry_queues(queue or self.queue_name, self.backoff, self.max_attempts)

    def handle_message(self, body: Any, message: Any) -> None:
        delivered = time.time()
        attempt = int((message.headers or {}).get(H_ATTEMPT, 0)) + 1
        try:
            event = parse_event(body)
            if event.type != self.contract_type:
                raise ContractError(f"expected {self.contract_type}, got {event.type}")
        except ContractError as exc:
            # A malformed event will not get better by retrying.
            self._fail(message, None, exc, attempt, permanent=True)
            return
        if self.trace:
            self.trace.record("consumer_delivered", [event.id], delivered)
        context_data = self.unpack_message_headers(message)
        handle_result = partial(self.handle_event_result, message, event, attempt, time.perf_counter())
        try:
            self.container.spawn_worker(
                self, (event,), {}, context_data=context_data, handle_result=handle_result
            )
        except ContainerBeingKilled:
            self.queue_consumer.requeue_message(message)

    def handle_event_result(self, message, event: CloudEvent, attempt: int, started: float, worker_ctx,
                            result=None, exc_info=None):
        service = self.container.service_name
        if exc_info is None:
            if self.trace:
                self.trace.record("consumer_handled", [event.id])
            outcome = "duplicate" if result is False else "applied"
            metrics.events_consumed.labels(service, event.type, outcome).inc()
            if outcome == "applied":
                observe_applied(service, self.queue_name, event.time)
                if os.environ.get(FAULT_KILL_AFTER_COMMIT):
                    log.warning("fault injection: killing the service before it acks an applied event")
                    os.kill(os.getpid(), signal.SIGKILL)
            self.queue_consumer.ack_message(message)
        else:
            self._fail(message, event, exc_info[1], attempt, permanent=False)
        return result, exc_info

    def _fail(self, message, event: CloudEvent | None, exc: BaseException, attempt: int, *, permanent: bool) -> None:
        service = self.container.service_name
        event_type = event.type if event else self.contract_type
        headers = dict(message.headers or {})
        headers[H_ATTEMPT] = attempt
        headers[H_QUEUE] = self.queue_name
        headers[H_ERROR] = f"{type(exc).__name__}: {exc}"[:2000]
        headers[H_ERROR_TYPE] = type(exc).__name__
        headers[H_FAILED_AT] = utcnow().isoformat()
        dead = permanent or attempt >= self.max_attempts
        if dead:
            target = Queue(dead_letter_queue(self.queue_name), exchange=DEFAULT_EXCHANGE,
                           routing_key=dead_letter_queue(self.queue_name), durable=True,
                           queue_arguments=durable_arguments())
        else:
            name, arguments = self.retry_queues()[attempt - 1]
            target = Queue(name, exchange=DEFAULT_EXCHANGE, routing_key=name, durable=True,
                           queue_arguments=arguments)
        try:
            self.publisher.publish(
                message.body,
                exchange=DEFAULT_EXCHANGE,
                routing_key=target.name,
                headers=headers,
                declare=[target],
                serializer=None,
                content_type=message.content_type,
                content_encoding=message.content_encoding,
                message_id=message.properties.get("message_id"),
                type=message.properties.get("type"),
                retry=True,
                retry_policy={"max_retries": 3},
            )
        except Exception:
            log.exception("could not park a failed event; it goes back to its queue")
            self.queue_consumer.requeue_message(message)
            return
        self.queue_consumer.ack_message(message)
        outcome = "dead_lettered" if dead else "retried"
        metrics.events_consumed.labels(service, event_type, outcome).inc()
        quiet = isinstance(exc, NotYet) and not dead
        log.log(
            40 if dead else (20 if quiet else 30),
            "event handler failed" + (", dead-lettered" if dead else ", will retry"),
            extra={"event_type": event_type, "attempt": attempt, "queue": target.name,
                   "error": headers[H_ERROR], "event_id": event.id if event else message.properties.get("message_id")},
        )



class _OneAtATimeQueueConsumer(DeliveryQueueConsumer):
    """A queue consumer of its own (its own connection) whose consumers have one message in flight each."""

    @property
    def prefetch_count(self) -> int:
        return 1


class OneAtATimeEventHandler(ReliableEventHandler):
    """A handler applying its events one at a time: for events that would only wait for one another (the
    e-journal bridge's deliveries of one school take its lock), so that they do not take every worker of the
    service (nameko gives each consumer ``max_workers`` messages at once) and leave its RPCs none (issue #17)."""

    queue_consumer = _OneAtATimeQueueConsumer()


consume_event = ReliableEventHandler.decorator
consume_event_one_at_a_time = OneAtATimeEventHandler.decorator
