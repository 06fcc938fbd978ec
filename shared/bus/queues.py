"""How the platform's durable queues are declared: every consumer queue, its retry queues and its dead-letter
queue get the same arguments wherever they are declared (topology, the consumer, the dead-letter tool), or
RabbitMQ refuses the second declaration (406 PRECONDITION_FAILED).

``SFERA_QUEUE_TYPE`` (default ``quorum``): quorum queues are replicated over a cluster's nodes (Raft), so a
broker node lost loses no event; ``classic`` only for an old local RabbitMQ (quorum queues need 3.8, message
TTL on them and at-least-once dead-lettering 3.10). Quorum queues cannot be exclusive or auto-deleted and
take no ``x-max-priority``: ours are neither. Queues that stay classic on purpose: the gateway's realtime
queue (exclusive, one per process, gone with it) and an SFU node's command queue (one node's own, deleted by
``x-expires`` once that node is gone: a queue that names one machine's process gains nothing from copies on
three brokers, and it is re-made with the node).

A queue declared before with other arguments (a classic one from an older release) is re-declared by
``ensure_queue``: its messages move through a holding queue into the new one (each published with a confirm
before it is acked), so changing the type loses nothing.
"""

from __future__ import annotations

import pika
import pika.exceptions

from shared.bus.naming import retry_queue
from shared.config import env_str

QUEUE_TYPES = ("quorum", "classic")


def queue_type() -> str:
    kind = env_str("SFERA_QUEUE_TYPE", "quorum")
    if kind not in QUEUE_TYPES:
        raise ValueError(f"SFERA_QUEUE_TYPE={kind!r}: expected one of {', '.join(QUEUE_TYPES)}")
    return kind


def durable_arguments() -> dict:
    """Arguments of a consumer queue and of a dead-letter queue."""
    return {"x-queue-type": queue_type()}


def own_queue_arguments(**extra) -> dict:
    """Arguments of a queue that belongs to one process (the gateway's realtime queue, an SFU node's command
    queue): classic, said explicitly, so a broker whose default queue type is quorum (RabbitMQ 3.11+'s
    ``default_queue_type`` of a vhost, the cluster operator's setting) still makes it what it is."""
    return {"x-queue-type": "classic", **extra}


def retry_arguments(delay: float, back_to: str) -> dict:
    """A retry queue: a message waits ``delay`` seconds, then is dead-lettered back into ``back_to``. On a
    quorum queue that hand-over is at-least-once (by default quorum dead-lettering is at-most-once: a message
    could be dropped when the consumer queue is briefly unavailable), which needs reject-publish overflow."""
    arguments = {**durable_arguments(), "x-message-ttl": int(delay * 1000), "x-dead-letter-exchange": "",
                 "x-dead-letter-routing-key": back_to}
    if arguments["x-queue-type"] == "quorum":
        arguments |= {"x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"}
    return arguments


def retry_queues(queue: str, backoff: tuple[float, ...], max_attempts: int) -> list[tuple[str, dict]]:
    """Name and arguments of the queue a message of ``queue`` waits in after its failed attempt 1, 2, ... (all
    but the last attempt, which dead-letters); its delay is ``backoff``'s for that attempt (the last repeated)."""
    return [(retry_queue(queue, attempt), retry_arguments(backoff[min(attempt, len(backoff)) - 1], back_to=queue))
            for attempt in range(1, max_attempts)]


def ensure_queue(connection: pika.BlockingConnection, channel, name: str, arguments: dict):
    """Declares ``name`` durable with ``arguments``; one declared with others is re-declared with its messages
    kept. Returns the channel to go on with (a refused declaration closes the one given)."""
    try:
        channel.queue_declare(queue=name, durable=True, arguments=arguments)
        return channel
    except pika.exceptions.ChannelClosedByBroker as exc:
        if exc.reply_code != 406:
            raise
    channel = connection.channel()
    channel.confirm_delivery()
    holding = f"{name}.redeclare"
    channel.queue_declare(queue=holding, durable=True, arguments=arguments)
    moved = move_messages(channel, name, holding)
    channel.queue_delete(queue=name)  # its bindings go with it: the caller binds the new one
    # a new channel: RabbitMQ 3.10's channel keeps the deleted queue's type and crashes publishing to the new one
    channel.close()
    channel = connection.channel()
    channel.confirm_delivery()
    channel.queue_declare(queue=name, durable=True, arguments=arguments)
    move_messages(channel, holding, name)
    channel.queue_delete(queue=holding)
    print(f"{name}: declared again with {arguments} ({moved} messages kept)")
    return channel


def move_messages(channel, source: str, target: str) -> int:
    """Every message of ``source`` into ``target``, each confirmed by the broker before its ack."""
    moved = 0
    while True:
        method, properties, body = channel.basic_get(source, auto_ack=False)
        if method is None:
            return moved
        channel.basic_publish("", target, body, properties, mandatory=True)
        channel.basic_ack(method.delivery_tag)
        moved += 1
