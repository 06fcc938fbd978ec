"""RPC requests and replies travel transient and unconfirmed (shared.rpc, issue #17 "live chat delivery"): nameko
published both persistent and waited for the broker's confirm of each, which an RPC does not need (its caller
times out and retries) and which made the gateway's ``publish`` return only once the service had answered and
acked. Against the real broker and a service process: the messages are transient, a call still answers, a service
killed mid-call and started again answers the call it had not answered (the request was never acked), and a
service that stays down gives the caller ``RpcTimeout`` (the gateway's 503 ``service.unavailable``) at its
timeout, not a hang."""

from __future__ import annotations

import threading
import time

import pytest
from kombu import Connection, Exchange, Queue
from nameko.exceptions import RpcTimeout

from gateway.rpc import RpcPool

ECHO = "tests.fixtures.rpc_echo:EchoService"


@pytest.fixture
def echo(make_stack):
    stack = make_stack("sqlite")
    port = stack.config.metrics_base_port + 35

    def start():
        stack.start_service("rpc_echo", ECHO, port=port)
        stack.wait_healthy(["rpc_echo"])

    start()
    return stack, start


def spy(amqp_uri: str):
    """A queue that gets a copy of every message on nameko's RPC exchange (requests and replies)."""
    connection = Connection(amqp_uri)
    queue = Queue("rpc-spy", Exchange("nameko-rpc", type="topic", durable=True), routing_key="#", exclusive=True)
    queue(connection.default_channel).declare()
    return connection, queue


def test_rpc_requests_and_replies_are_transient_and_a_call_answers(echo):
    stack, _ = echo
    connection, queue = spy(stack.amqp_uri)
    pool = RpcPool(stack.amqp_uri, size=2, timeout=10)
    try:
        assert pool.call("rpc_echo", "echo", text="привет") == "привет"
        seen = []
        deadline = time.monotonic() + 5
        while len(seen) < 2 and time.monotonic() < deadline:
            message = queue(connection.default_channel).get(no_ack=True)
            if message is None:
                time.sleep(0.05)
                continue
            seen.append((message.delivery_info["routing_key"], message.properties.get("delivery_mode")))
        assert [key for key, _ in seen][:1] == ["rpc_echo.echo"] and len(seen) == 2, seen
        assert [mode for _, mode in seen] == [1, 1], f"request and reply must be transient: {seen}"
    finally:
        pool.close()
        connection.close()


def test_a_service_killed_mid_call_and_started_again_answers_the_call(echo):
    stack, start = echo
    pool = RpcPool(stack.amqp_uri, size=2, timeout=30)
    answer: dict = {}

    def call():
        try:
            answer["value"] = pool.call("rpc_echo", "echo", text="once", pause=2.0)
        except Exception as exc:  # noqa: BLE001 - the test reads it
            answer["error"] = exc

    caller = threading.Thread(target=call)
    try:
        caller.start()
        time.sleep(0.8)  # the service holds the request, unacked, in its pause
        stack.stop_process("rpc_echo", kill=True)
        start()
        caller.join(25)
        assert not caller.is_alive() and answer == {"value": "once"}, answer
    finally:
        pool.close()


def test_a_service_that_stays_down_gives_the_caller_a_timeout_not_a_hang(echo):
    stack, _ = echo
    pool = RpcPool(stack.amqp_uri, size=2, timeout=2)
    try:
        assert pool.call("rpc_echo", "echo", text="up") == "up"
        stack.stop_process("rpc_echo", kill=True)
        started = time.monotonic()
        with pytest.raises(RpcTimeout):
            pool.call("rpc_echo", "echo", text="anyone?")
        assert time.monotonic() - started < 5
    finally:
        pool.close()


def test_a_call_builds_no_kombu_connection_to_find_its_producer_pool(echo, monkeypatch):
    """nameko built a kombu ``Connection`` for every publish only to look its producer pool up (the URI parsed,
    librabbitmq's import tried: about a third of the gateway's publish); shared.rpc keeps the one key."""
    import kombu

    stack, _ = echo
    pool = RpcPool(stack.amqp_uri, size=1, timeout=10)
    try:
        assert pool.call("rpc_echo", "echo", text="warm") == "warm"  # the proxy's own connection and reply queue
        built = []
        original = kombu.Connection.__init__

        def counting(self, *args, **kwargs):
            built.append(args[:1])
            original(self, *args, **kwargs)

        monkeypatch.setattr(kombu.Connection, "__init__", counting)
        for n in range(5):
            assert pool.call("rpc_echo", "echo", text=str(n)) == str(n)
        assert built == []
    finally:
        pool.close()


def test_the_caller_acks_no_reply_and_every_call_gets_its_own(echo, monkeypatch):
    """A proxy's replies come on its own exclusive queue, read once by the one caller waiting: they are consumed
    without acks (an ack per reply was a frame the gateway wrote and the broker handled for nothing: a tenth of the
    caller's CPU a call)."""
    import amqp

    stack, _ = echo
    pool = RpcPool(stack.amqp_uri, size=1, timeout=10)
    try:
        assert pool.call("rpc_echo", "echo", text="warm") == "warm"
        acked = []
        original = amqp.Channel.basic_ack

        def counting(self, *args, **kwargs):
            acked.append(args)
            return original(self, *args, **kwargs)

        monkeypatch.setattr(amqp.Channel, "basic_ack", counting)
        assert [pool.call("rpc_echo", "echo", text=str(n)) for n in range(5)] == [str(n) for n in range(5)]
        assert acked == []
    finally:
        pool.close()
