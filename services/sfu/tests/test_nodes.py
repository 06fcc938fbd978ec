"""An SFU node among several (issue #17): it tells calls it is alive, where clients reach it and which calls it
carries (``sfu.NodeHeartbeat``), no heartbeat while the broker is away; it refuses a join token calls issued for
another node (the room must not split over two nodes)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import aiohttp
import jwt
import pytest
from aiohttp import web

from sfu.bus import FactPublisher
from sfu.server import Node, make_app
from shared.contracts import get_contract
from shared.contracts.join_token import TOKEN_AUDIENCE, token_secret

pytestmark = pytest.mark.unit


class Facts:
    def __init__(self):
        self.sent: list[tuple[str, dict]] = []

    def publish(self, name: str, **data) -> None:
        self.sent.append((name, data))

    def heartbeat(self, **data) -> bool:
        self.publish("NodeHeartbeat", **data)
        return True


def token(call_id: str, node: str | None) -> str:
    now = int(time.time())
    claims = {"aud": TOKEN_AUDIENCE, "sub": str(uuid.uuid4()), "call": call_id, "room": call_id, "role": "participant",
              "rights": ["subscribe", "audio"], "muted": False, "iat": now, "exp": now + 60}
    if node is not None:
        claims["node"] = node
    return jwt.encode(claims, token_secret(), algorithm="HS256")


def test_a_node_reports_its_url_and_calls_and_refuses_a_token_for_another_node():
    async def scenario() -> None:
        facts = Facts()
        node = Node("sfu-a", facts, url="ws://sfu-a.example/ws", heartbeat=0.05)
        runner = web.AppRunner(make_app(node))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        beats = asyncio.ensure_future(node.heartbeats())
        call_id = str(uuid.uuid4())
        try:
            async with aiohttp.ClientSession() as session:
                async with session.ws_connect(f"http://127.0.0.1:{port}/ws") as ws:
                    await ws.send_str(json.dumps({"type": "join", "token": token(call_id, "sfu-b")}))
                    refused = json.loads((await ws.receive(timeout=5)).data)
                    assert refused["type"] == "error" and refused["code"] == "call.wrong_node"
                async with session.ws_connect(f"http://127.0.0.1:{port}/ws") as ws:
                    await ws.send_str(json.dumps({"type": "join", "token": token(call_id, "sfu-a")}))
                    assert json.loads((await ws.receive(timeout=5)).data)["type"] == "joined"
                    await asyncio.sleep(0.15)
                    name, data = facts.sent[-1]
                    assert name == "NodeHeartbeat"
                    assert data == {"url": "ws://sfu-a.example/ws", "interval": 0.05, "calls": [call_id], "rooms": 1,
                                    "participants": 1, "boot": node.boot}
                    get_contract("sfu.NodeHeartbeat.v1").schema().load({**data, "node": "sfu-a"})
        finally:
            beats.cancel()
            await node.close()
            await runner.cleanup()

    asyncio.run(scenario())


def test_no_heartbeat_is_queued_while_the_broker_is_away():
    async def scenario() -> None:
        facts = FactPublisher("amqp://guest:guest@127.0.0.1:1/", "sfu-a")
        assert facts.heartbeat(url="ws://x/ws", interval=2.0, calls=[], rooms=0, participants=0)
        facts.stalled = True  # what a failed publish leaves
        assert not facts.heartbeat(url="ws://x/ws", interval=2.0, calls=[], rooms=0, participants=0)
        assert facts.queue.qsize() == 1

    asyncio.run(scenario())


def test_a_nodes_facts_are_numbered_rising_even_across_a_restart():
    """calls sets aside a fact older than the node's last one it applied for that person (a flapping connection's
    late connect seated a ghost): each fact says its number (``sequence``), rising within a process and from the
    clock, so a node started again goes on above its numbers before."""
    from shared.contracts import parse_event

    async def scenario() -> list[int]:
        numbers = []
        for _ in range(2):  # the node, then the node started again
            facts = FactPublisher("amqp://guest:guest@127.0.0.1:1/", "sfu-a")
            for name in ("ParticipantConnected", "ParticipantDisconnected", "ParticipantConnected"):
                facts.publish(name, call_id=uuid.uuid4(), user_id=uuid.uuid4(), room="r")
            while not facts.queue.empty():
                numbers.append(parse_event(facts.queue.get_nowait().body).sequence)
        return numbers

    numbers = asyncio.run(scenario())
    assert len(numbers) == 6 and numbers == sorted(set(numbers))


def test_a_node_not_consuming_calls_commands_is_unready_but_alive():
    """A node whose command consumer is not connected (the broker away, or still connecting) cannot be told that a
    participant was removed or a call ended: /healthz (readiness) is 503 naming it, while /livez (liveness) stays
    200 so a broker outage does not restart nodes and cut the calls they carry. Before: /healthz said ok always."""
    class Commands:
        def __init__(self):
            self.ready = asyncio.Event()

    async def scenario() -> None:
        facts, commands = Facts(), Commands()
        node = Node("sfu-a", facts, url="ws://sfu-a.example/ws")
        runner = web.AppRunner(make_app(node, commands))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        try:
            async with aiohttp.ClientSession() as session:
                async def get(path: str) -> tuple[int, dict]:
                    async with session.get(f"http://127.0.0.1:{port}{path}") as answer:
                        return answer.status, await answer.json()

                status, body = await get("/healthz")
                assert status == 503 and body["status"] == "failing", body
                assert body["checks"]["commands"].startswith("failing"), body
                assert (await get("/livez"))[0] == 200
                commands.ready.set()
                status, body = await get("/healthz")
                assert status == 200 and body["checks"] == {"commands": "ok", "facts": "ok"}, body
                facts.stalled = True  # the last publish of facts failed
                status, body = await get("/healthz")
                assert status == 503 and body["checks"]["facts"].startswith("failing"), body
                assert (await get("/livez"))[0] == 200
        finally:
            await node.close()
            await runner.cleanup()

    asyncio.run(scenario())
