"""The SFU node's name is stable (SFERA_SFU_NODE, else host name and port): a
restarted SFU consumes its old command queue again instead of leaving it behind;
a node that is gone for good loses its queue after SFERA_SFU_QUEUE_EXPIRES."""

from __future__ import annotations

import json
import socket
import urllib.request

import pytest

from tests.helpers import eventually

pytestmark = pytest.mark.reliability


def sfu_queues(stack) -> dict[str, str]:
    out = stack.rabbitmq.ctl("list_queues", "-p", stack.config.vhost, "name", "arguments", "--quiet",
                             "--no-table-headers")
    rows = [line.split("\t", 1) for line in out.splitlines() if line.strip()]
    return {row[0]: row[1] if len(row) > 1 else "" for row in rows if row[0].startswith("sfu.")}


def test_a_restarted_sfu_reuses_its_queue_and_an_abandoned_queue_expires(make_stack):
    stack = make_stack("sqlite", SFERA_SFU_QUEUE_EXPIRES="3")
    stack.start_sfu(SFERA_SFU_NODE="")  # the default name
    stack.wait_healthy(["sfu"])
    with urllib.request.urlopen(stack.processes["sfu"].health_url, timeout=5) as response:
        node = json.load(response)["node"]
    assert node == f"{socket.gethostname()}-{stack.config.sfu_port}"
    queue = f"sfu.{node}.commands"
    first = eventually(lambda: sfu_queues(stack), what="the node's command queue")
    assert list(first) == [queue] and "x-expires" in first[queue] and "3000" in first[queue]

    for _ in range(2):
        stack.stop_process("sfu")
        stack.start_sfu(SFERA_SFU_NODE="")
        stack.wait_healthy(["sfu"])
        assert list(sfu_queues(stack)) == [queue], "a restart reuses the queue, none piles up"

    stack.stop_process("sfu")  # gone for good
    eventually(lambda: sfu_queues(stack) == {}, timeout=20, interval=0.5, what="the abandoned queue to expire")


def test_a_queue_declared_before_the_expiry_is_replaced_when_empty(make_stack):
    import pika

    stack = make_stack("sqlite")
    connection = pika.BlockingConnection(pika.URLParameters(stack.amqp_uri))
    connection.channel().queue_declare("sfu.old-node.commands", durable=True)  # as the SFU did before
    connection.close()
    stack.start_sfu(SFERA_SFU_NODE="old-node")
    stack.wait_healthy(["sfu"])
    queues = eventually(lambda: {k: v for k, v in sfu_queues(stack).items() if "x-expires" in v},
                        what="the queue declared again with its expiry")
    assert list(queues) == ["sfu.old-node.commands"]
