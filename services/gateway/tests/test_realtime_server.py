"""The asyncio realtime server (issue #17) over real sockets on loopback: it closes the sockets of a signed-out
session (ID-8, the SessionEnded event arriving through the real broker) and of an expired token, shows each viewer
their version of an event (CH-5), and a client that does not read is dropped without holding up the others."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import time
import uuid
from datetime import datetime, timezone

import aiohttp
import jwt
import pytest
from aiohttp.test_utils import TestServer

from gateway.realtime_server import CONSUMER, HUB, TOO_SLOW, make_app
from shared.auth import ALGORITHM, issue_access_token
from shared.config import settings
from shared.contracts import make_event
from tests.helpers import publish_event as publish

CHAT = str(uuid.uuid4())
PUPIL, ADMIN, OTHER = (str(uuid.uuid4()) for _ in range(3))


class Rpc:
    """identity and messaging as the server asks them: sessions are active unless ended, one chat's audience."""

    def __init__(self, members=(PUPIL, ADMIN, OTHER), concealed=()):
        self.members, self.concealed, self.asked = list(members), list(concealed), []

    def call(self, service, method, **kwargs):
        self.asked.append((service, method))
        if (service, method) == ("identity", "session_is_active"):
            return True
        assert (service, method) == ("messaging", "audience") and kwargs == {"chat_id": CHAT}
        return {"members": self.members, "concealed": self.concealed}


def token(user_id: str, session_id: str | None = None, ttl: int | None = None) -> str:
    if ttl is None:
        return issue_access_token(uuid.UUID(user_id), session_id or str(uuid.uuid4())).token
    config, now = settings(), int(time.time())
    return jwt.encode({"sub": user_id, "iss": config.jwt_issuer, "iat": now, "exp": now + ttl, "jti": "j",
                       "sid": session_id or str(uuid.uuid4())}, config.jwt_secret, algorithm=ALGORITHM)


def event(event_type: str, data: dict):
    return make_event(event_type, data, event_id=f"test:{uuid.uuid4().hex}")


def read(user_id: str, seq: int = 1):
    return event("messaging.MessagesRead.v1", {"chat_id": CHAT, "user_id": user_id, "read_until": seq,
                                               "read_at": datetime.now(timezone.utc)})


def posted(seq: int, text: str = ""):
    return event("messaging.MessagePosted.v1", {"chat_id": CHAT, "message_id": uuid.uuid4(), "seq": seq,
                                                "author_id": PUPIL, "text": text,
                                                "posted_at": datetime.now(timezone.utc)})


def run(scenario, rpc=None, **app_options):
    """``scenario(server, hub, connect)`` against a running server; ``connect(token)`` opens a client socket and
    reads its ``ready``."""

    async def main():
        server = TestServer(make_app(rpc or Rpc(), **app_options), host="127.0.0.1")
        await server.start_server()
        session = aiohttp.ClientSession()

        async def connect(access_token: str):
            ws = await session.ws_connect(server.make_url(f"/api/v1/realtime?access_token={access_token}"))
            assert json.loads((await ws.receive(timeout=5)).data)["type"] == "ready"
            return ws

        try:
            await scenario(server, server.app[HUB], connect)
        finally:
            await session.close()  # the clients first: the server's shutdown waits for its handlers
            await server.close()

    asyncio.run(asyncio.wait_for(main(), 60))


async def frame(ws, timeout: float = 5) -> dict:
    message = await ws.receive(timeout=timeout)
    assert message.type is aiohttp.WSMsgType.TEXT, message
    return json.loads(message.data)


async def closed_with(ws, timeout: float = 5) -> int:
    """The code of the close frame the server sent."""
    message = await ws.receive(timeout=timeout)
    assert message.type is aiohttp.WSMsgType.CLOSE, message
    return message.data


@pytest.mark.integration
def test_signing_out_closes_every_socket_of_that_session_and_no_other_ID_8(rabbitmq):
    amqp_uri = rabbitmq.amqp_uri
    session_id = str(uuid.uuid4())

    async def scenario(server, hub, connect):
        consumer = server.app[CONSUMER]
        assert await asyncio.to_thread(consumer.ready.wait, 20)
        phone, laptop = await connect(token(PUPIL, session_id)), await connect(token(PUPIL, session_id))
        other = await connect(token(OTHER))
        ended = event("identity.SessionEnded.v1", {"session_id": session_id, "reason": "signed_out",
                                                   "ended_at": datetime.now(timezone.utc)})
        await asyncio.to_thread(publish, amqp_uri, ended)  # the real broker, the consumer's thread, the loop
        for ws in (phone, laptop):
            assert (await frame(ws))["error"]["code"] == "auth.session_ended"
            assert await closed_with(ws) == 1008
        assert set(hub.sockets) == {OTHER}
        await asyncio.to_thread(publish, amqp_uri, posted(1, "still here"))
        assert (await frame(other))["data"]["text"] == "still here"

    run(scenario, amqp_uri=amqp_uri)


def test_the_servers_cleanup_stops_its_broadcast_consumer(rabbitmq):
    """The server's cleanup stops its consumer thread and closes its connection. Before: the thread had no stop and
    reconnected every second for as long as the process lived (in the test suite, to brokers long gone)."""
    kept = {}

    async def scenario(server, hub, connect):
        kept["consumer"] = consumer = server.app[CONSUMER]
        assert await asyncio.to_thread(consumer.ready.wait, 20)

    run(scenario, amqp_uri=rabbitmq.amqp_uri)
    consumer = kept["consumer"]
    assert not consumer.is_alive() and not consumer.connection.is_open


def test_a_consumer_stopped_while_the_broker_is_away_stops_at_once():
    from gateway.realtime import BroadcastConsumer

    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    consumer = BroadcastConsumer(f"amqp://guest:guest@127.0.0.1:{port}/", hub=None)
    consumer.start()
    time.sleep(0.3)  # a refused connection, then the wait before the next attempt
    started = time.monotonic()
    consumer.stop()
    assert not consumer.is_alive() and time.monotonic() - started < 1.0


@pytest.mark.unit
def test_a_socket_closes_when_its_access_token_expires_ID_8():
    async def scenario(server, hub, connect):
        issued = time.time()  # the token's exp is int(issued) + 2: at least a second on
        short, long = await connect(token(PUPIL, ttl=2)), await connect(token(OTHER))
        assert (await frame(short, timeout=10))["error"]["code"] == "auth.token_expired"
        assert await closed_with(short) == 1008
        assert issued + 1 <= time.time() < issued + 10
        assert set(hub.sockets) == {OTHER} and not long.closed

    run(scenario)


@pytest.mark.unit
def test_a_bad_token_is_refused_with_the_reason():
    async def scenario(server, hub, connect):
        async with aiohttp.ClientSession() as session:
            ws = await session.ws_connect(server.make_url("/api/v1/realtime?access_token=nonsense"))
            assert (await frame(ws))["error"]["code"] == "auth.invalid_token"
            assert await closed_with(ws) == 1008
        assert not hub.sockets

    run(scenario)


@pytest.mark.unit
def test_each_viewer_receives_the_version_they_may_see_CH_5():
    rpc = Rpc(members=[PUPIL, ADMIN], concealed=[ADMIN])

    async def scenario(server, hub, connect):
        pupil, admin = await connect(token(PUPIL)), await connect(token(ADMIN))
        hub.handle_event(read(ADMIN, 3))
        assert (await frame(pupil))["data"]["user_id"] is None
        assert (await frame(admin))["data"]["user_id"] == ADMIN
        hub.handle_event(read(PUPIL, 4))  # the audience is cached: messaging is asked once
        assert (await frame(pupil))["data"]["user_id"] == PUPIL
        assert (await frame(admin))["data"]["read_until"] == 4
        assert rpc.asked.count(("messaging", "audience")) == 1
        await pupil.send_str("ping")
        assert (await pupil.receive(timeout=5)).data == "pong"

    run(scenario, rpc)


def stalled_client(port: int, access_token: str) -> socket.socket:
    """A WebSocket client that opens and then never reads (a tiny receive buffer, so the server's fills fast)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /api/v1/realtime?access_token={access_token} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    return sock


def read_until(sock: socket.socket, wanted: bytes, timeout: float = 10) -> bytes:
    sock.settimeout(timeout)
    received = b""
    while wanted not in received and (chunk := sock.recv(1 << 20)):
        received += chunk
    return received


@pytest.mark.unit
def test_a_client_that_does_not_read_is_dropped_and_never_holds_up_the_others():
    total, text = 400, "x" * 16_000

    async def scenario(server, hub, connect):
        readers = [await connect(token(user)) for user in (PUPIL, ADMIN)]
        stalled = stalled_client(server.port, token(OTHER))
        for _ in range(100):
            if OTHER in hub.sockets:
                break
            await asyncio.sleep(0.05)
        assert OTHER in hub.sockets

        async def produce():
            for seq in range(1, total + 1):
                hub.handle_event(posted(seq, text))
                await asyncio.sleep(0.002)

        producing = asyncio.create_task(produce())
        started = time.monotonic()

        async def seqs(ws) -> list[int]:
            return [(await frame(ws))["data"]["seq"] for _ in range(total)]

        assert await asyncio.gather(*map(seqs, readers)) == [list(range(1, total + 1))] * len(readers)
        await producing
        assert time.monotonic() - started < 15
        assert hub.dropped == 1 and OTHER not in hub.sockets
        # once it reads: what it had been sent, then a close frame with 1013
        close_frame = bytes([0x88, 0x13]) + TOO_SLOW.to_bytes(2, "big") + b"realtime.too_slow"
        received = await asyncio.to_thread(read_until, stalled, close_frame)
        stalled.close()
        assert received.startswith(b"HTTP/1.1 101") and close_frame in received

    run(scenario, buffer_limit=256 << 10, close_grace=30)
