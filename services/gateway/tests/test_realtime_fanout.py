"""The realtime fan-out's plumbing: its queue's bindings come from the event catalogue, and every writer to a
socket holds that socket's one send lock."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest

from gateway.realtime import PUSHED, SESSION_ENDED, BroadcastConsumer, Hub
from shared.contracts import get_contract

pytestmark = pytest.mark.unit


class Channel:
    def __init__(self):
        self.exchanges, self.bindings = set(), set()

    def queue_declare(self, queue, **kwargs):
        return SimpleNamespace(method=SimpleNamespace(queue="amq.gen-1"))

    def exchange_declare(self, exchange, **kwargs):
        self.exchanges.add(exchange)

    def queue_bind(self, queue, exchange, routing_key):
        assert exchange in self.exchanges and queue == "amq.gen-1"
        self.bindings.add((exchange, routing_key))


def test_the_queue_is_bound_to_each_pushed_events_exchange_from_the_catalogue():
    channel = Channel()
    BroadcastConsumer.bind(channel)
    assert channel.exchanges == {"messaging.events", "identity.events"}
    contracts = [get_contract(t) for t in (*PUSHED, SESSION_ENDED)]
    assert channel.bindings == {(c.exchange, c.routing_key) for c in contracts}
    assert ("messaging.events", "MessagePosted.v1") in channel.bindings
    assert ("identity.events", "SessionEnded.v1") in channel.bindings


class Socket:
    def __init__(self):
        self.sent = []

    def send(self, payload):
        self.sent.append(payload)

    def close(self, **kwargs):
        self.sent.append("closed")


class OneMember:
    def call(self, service, method, **kwargs):
        return {"members": ["u1"], "concealed": []}


def test_a_push_waits_for_the_lock_the_socket_handler_holds():
    hub = Hub(OneMember())
    ws = Socket()
    send_lock = hub.connect("u1", ws, "s1")
    assert hub.send_locks[id(ws)] is send_lock
    with send_lock:  # the handler is writing (a pong, a close)
        pusher = threading.Thread(target=hub.deliver, args=("MessagePosted.v1", {"chat_id": "c", "seq": 1}))
        pusher.start()
        time.sleep(0.2)
        assert ws.sent == []
    pusher.join(5)
    assert len(ws.sent) == 1
    with send_lock:
        ender = threading.Thread(target=hub.end_session, args=("s1",))
        ender.start()
        time.sleep(0.2)
        assert ws.sent[-1] != "closed"
    ender.join(5)
    assert ws.sent[-1] == "closed"
