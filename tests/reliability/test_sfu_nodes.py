"""Two SFU nodes (issue #17): calls puts two calls on two nodes (the least loaded live one); one node is SIGKILLed
under its call; within 10 s calls has its participants gone (its heartbeats stopped), the other call is untouched,
and the people who join the lost call again are sent to the live node, where real WebRTC peers (aiortc) see and
hear each other again. Then that node is SIGKILLed and started again at once under its name (a supervisor's
restart): its participants are gone too. The whole platform on RabbitMQ and PostgreSQL, loopback."""

from __future__ import annotations

import asyncio
import time

import jwt
import pytest

from tests.e2e.api import Api
from tests.e2e.conftest import OPERATOR_PHONE
from tests.e2e.test_calls import LUMAS, hears, sees, until
from tests.helpers import eventually, metric
from tests.webrtc import Peer

pytestmark = pytest.mark.reliability


def node_of(ticket: dict) -> str | None:
    return jwt.decode(ticket["token"], options={"verify_signature": False}).get("node")


def test_two_calls_on_two_nodes_a_killed_nodes_people_are_gone_within_10_s_and_rejoin_on_the_other(make_stack):
    stack = make_stack("postgres", SFERA_OPERATOR_PHONES=OPERATOR_PHONE, SFERA_CODES_PER_HOUR_PER_CLIENT="100000",
                       SFERA_CODE_RESEND_SECONDS="2")
    stack.config.sfu_nodes = 2
    stack.prepare()
    stack.start_all()
    assert {"sfu", "sfu-2"} <= set(stack.processes)
    api = Api(stack)
    org, admin = api.organization("Школа узлов", "Казань")
    klass = api.ok("POST", f"/organizations/{org}/classes", admin["access_token"], status=201,
                   json={"name": "7Б", "start_year": 2025, "end_year": 2030})["class_id"]
    pupils = [api.member(org, admin, "student", klass) for _ in range(3)]
    people = [admin, *pupils]
    ids = [api.ok("GET", "/me", p["access_token"])["user_id"] for p in people]
    chats = [api.chat_once_members_known(org, admin, name, ids[1:]) for name in ("Физика", "Химия")]
    calls = [api.ok("POST", "/calls", admin["access_token"], status=201, json={"chat_id": chat})["call_id"]
             for chat in chats]

    def join(person: int, call: int) -> dict:
        return api.ok("POST", f"/calls/{calls[call]}/join", people[person]["access_token"])

    # calls hears the nodes' heartbeats a moment after they start (until then a join names no node); both nodes
    # heard before the first join, or the two calls could both go to the one heard first (CI: {'sfu'})
    calls_metrics = f"http://127.0.0.1:{stack.metrics_port('calls')}/metrics"
    eventually(lambda: metric(calls_metrics, "sfera_sfu_nodes_live") == 2, timeout=30,
               what="calls to hear both SFU nodes")

    def placed() -> dict | None:
        ticket = join(1, 0)
        return ticket if node_of(ticket) else None

    first = eventually(placed, timeout=20, what="calls to hear the SFU nodes and put the first call on one")
    second = join(3, 1)
    assert {node_of(first), node_of(second)} == {"sfu", "sfu-2"}, "two calls, two nodes (the least loaded)"
    assert first["sfu_url"] != second["sfu_url"]
    assert node_of(join(0, 0)) == node_of(first), "a call stays on its node"
    lost_node, live_node = node_of(first), node_of(second)
    live_url = second["sfu_url"]

    def participants(call: int) -> list[dict]:
        return api.ok("GET", f"/calls/{calls[call]}", admin["access_token"])["participants"]

    async def scenario() -> float:
        tickets = {(0, 0): join(0, 0), (1, 0): first, (3, 1): second, (2, 1): join(2, 1)}
        peers = {key: await Peer(t["sfu_url"], t["token"], camera_luma=LUMAS[key[0]], tone_hz=300 + 200 * key[0])
                 .connect() for key, t in tickets.items()}
        try:
            for (a, call), peer in peers.items():
                b = next(x for x, c in peers if c == call and x != a)
                await until(lambda p=peer, b=b: sees(p, ids[b], "camera", LUMAS[b]), what=f"{a} to see {b}")
            def connected(call: int) -> int:
                return sum(p["connected"] for p in participants(call))

            await until(lambda: connected(0) == connected(1) == 2, timeout=10, what="calls to know all four connected")

            stack.stop_process(lost_node, kill=True)  # SIGKILL: no goodbye, no disconnect facts
            killed = time.monotonic()
            await until(lambda: participants(0) == [], timeout=15, what="the lost node's participants to be gone")
            gone_after = time.monotonic() - killed
            assert connected(1) == 2, "the live node's call is untouched"
            for key in [(0, 0), (1, 0)]:
                await peers.pop(key).close()

            # the people of the lost call join again: the live node
            again = {person: join(person, 0) for person in (0, 1)}
            assert all(t["sfu_url"] == live_url and node_of(t) != lost_node for t in again.values())
            for person, ticket in again.items():
                peers[(person, 0)] = await Peer(ticket["sfu_url"], ticket["token"], camera_luma=LUMAS[person],
                                                tone_hz=300 + 200 * person).connect()
            for a, b in ((0, 1), (1, 0)):
                await until(lambda a=a, b=b: sees(peers[(a, 0)], ids[b], "camera", LUMAS[b]),
                            what=f"{a} to see {b} on the live node")
                await until(lambda a=a, b=b: hears(peers[(a, 0)], ids[b]), what=f"{a} to hear {b} on the live node")
            assert peers[(0, 0)].slot_of(ids[2], "camera") is None, "the rooms stay apart on one node"
            await until(lambda: connected(0) == 2, timeout=10, what="calls to know the two rejoined")

            # the live node is SIGKILLed and started again at once under its name (as a supervisor does): never
            # silent for long, but its rooms are gone; its new heartbeats say it started again
            stack.stop_process(live_node, kill=True)
            restarted = time.monotonic()
            stack.start_sfu(replica=1 if live_node == "sfu" else 2)
            stack.wait_healthy([live_node])
            await until(lambda: connected(0) == connected(1) == 0, timeout=15,
                        what="the restarted node's participants to be gone")
            assert time.monotonic() - restarted < 10
            return gone_after
        finally:
            for peer in peers.values():
                await peer.close()

    gone_after = asyncio.run(scenario())
    assert gone_after < 10, f"the killed node's participants were gone after {gone_after:.1f} s"
    print(f"participants of the killed node gone after {gone_after:.1f} s")
