"""Operators' view of dead letters: list them with their errors, and replay them
into their consumer's queue once the cause is fixed.

    python -m shared.bus.dlq list [QUEUE ...]
    python -m shared.bus.dlq replay QUEUE [--id MESSAGE_ID]

QUEUE is a consumer queue (``evt-identity-UserRegistered.v1--school.on_user_registered``)
or its dead-letter queue (the same with ``.dlq``). With no QUEUE, ``list``
covers every consumer of the platform (``make dlq``).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass

import pika

from shared.bus.naming import DLQ_SUFFIX, H_ATTEMPT, H_ERROR, H_FAILED_AT, H_QUEUE, dead_letter_queue
from shared.bus.queues import durable_arguments
from shared.config import settings


@dataclass(frozen=True)
class DeadLetter:
    queue: str
    message_id: str | None
    type: str | None
    attempts: int
    error: str
    failed_at: str | None
    body: bytes


def _dlq_name(queue: str) -> str:
    return queue if queue.endswith(DLQ_SUFFIX) else dead_letter_queue(queue)


def _connect(amqp_uri: str | None) -> pika.BlockingConnection:
    return pika.BlockingConnection(pika.URLParameters(amqp_uri or settings().amqp_uri))


def list_dead_letters(queue: str, amqp_uri: str | None = None) -> list[DeadLetter]:
    """Read without removing: messages are fetched unacked, then returned on close."""
    connection = _connect(amqp_uri)
    try:
        channel = connection.channel()
        channel.queue_declare(queue=_dlq_name(queue), durable=True, arguments=durable_arguments())
        letters = []
        while True:
            method, properties, body = channel.basic_get(_dlq_name(queue), auto_ack=False)
            if method is None:
                break
            headers = properties.headers or {}
            letters.append(
                DeadLetter(
                    queue=str(headers.get(H_QUEUE, queue.removesuffix(DLQ_SUFFIX))),
                    message_id=properties.message_id,
                    type=properties.type,
                    attempts=int(headers.get(H_ATTEMPT, 0)),
                    error=str(headers.get(H_ERROR, "")),
                    failed_at=headers.get(H_FAILED_AT),
                    body=body,
                )
            )
        channel.close()  # unacked messages go back, in their order
        return letters
    finally:
        connection.close()


def replay(queue: str, message_id: str | None = None, amqp_uri: str | None = None) -> int:
    """Move dead letters (all, or one by id) back to their consumer queue with a
    fresh attempt count. Publish is confirmed before the dead letter is acked."""
    connection = _connect(amqp_uri)
    moved = 0
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        dlq = _dlq_name(queue)
        channel.queue_declare(queue=dlq, durable=True, arguments=durable_arguments())
        skipped = []
        while True:
            method, properties, body = channel.basic_get(dlq, auto_ack=False)
            if method is None:
                break
            if message_id is not None and properties.message_id != message_id:
                skipped.append(method.delivery_tag)
                continue
            headers = dict(properties.headers or {})
            target = str(headers.pop(H_QUEUE, dlq.removesuffix(DLQ_SUFFIX)))
            headers.pop(H_ATTEMPT, None)
            properties.headers = headers
            channel.basic_publish(exchange="", routing_key=target, body=body, properties=properties, mandatory=True)
            channel.basic_ack(method.delivery_tag)
            moved += 1
        for tag in skipped:
            channel.basic_nack(tag, requeue=True)
        return moved
    finally:
        connection.close()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.bus.dlq", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_list = sub.add_parser("list", help="show dead letters and their errors")
    p_list.add_argument("queues", nargs="*")
    p_list.add_argument("--json", action="store_true", help="one JSON object per dead letter")
    p_replay = sub.add_parser("replay", help="send dead letters back to their consumer")
    p_replay.add_argument("queue")
    p_replay.add_argument("--id", dest="message_id")
    args = parser.parse_args(argv)

    if args.command == "replay":
        moved = replay(args.queue, args.message_id)
        print(f"replayed {moved} message(s) from {_dlq_name(args.queue)}")
        return 0

    queues = args.queues
    if not queues:
        from shared.bus.topology import platform_bindings

        queues = [b.queue for b in platform_bindings()]
    total = 0
    for queue in queues:
        letters = list_dead_letters(queue)
        total += len(letters)
        if args.json:
            for d in letters:
                print(json.dumps({"queue": d.queue, "message_id": d.message_id, "type": d.type,
                                  "attempts": d.attempts, "error": d.error, "failed_at": d.failed_at}))
            continue
        print(f"{_dlq_name(queue)}: {len(letters)} dead letter(s)")
        for d in letters:
            print(f"  {d.message_id}  {d.type}  attempts={d.attempts}  failed_at={d.failed_at}\n    {d.error}")
    if not args.json:
        print(f"total: {total}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
