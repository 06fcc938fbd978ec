"""A join token is calls's word at the moment it was issued, and it may be used again for its two minutes; what calls
changed since reaches the node as commands, and the node judges a token against them (CA-3, CA-4, CA-5, CA-7, CA-10).

Before: ``Node.join`` took any valid token and kept no record, and a command reached only who was connected at that
moment. Someone the admin removed opened the socket again with the token they held and was back in the lesson's
media, unseen in the participant list (calls ignores a removed person's ParticipantConnected); a muted person came
back unmuted, a moved one in the room their token named, a participant whose screen share was taken back could
share again, and a token of an ended call opened its room again."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import aiohttp
import jwt
import pytest
from aiohttp import web

from sfu.server import Node, make_app
from shared.contracts.join_token import TOKEN_AUDIENCE, token_secret
from shared.errors import DomainError

pytestmark = pytest.mark.unit


async def nothing(message: dict) -> None:
    return None


def claims_of(call_id: str, user_id: str, **changes) -> dict:
    """What a valid join token says (``verify_join_token``'s answer), as calls issues it."""
    now = int(time.time())
    return {"aud": TOKEN_AUDIENCE, "sub": user_id, "call": call_id, "room": call_id, "role": "participant",
            "rights": ["subscribe", "audio", "video"], "muted": False, "kind": "lesson", "iat": now,
            "exp": now + 120, "jti": uuid.uuid4().hex, **changes}


def signed(claims: dict) -> str:
    return jwt.encode(claims, token_secret(), algorithm="HS256")


def run(scenario) -> None:
    async def wrapped() -> None:
        node = Node("sfu-a", None)
        try:
            await scenario(node)
        finally:
            await node.close()

    asyncio.run(wrapped())


async def rejoin(node: Node, claims: dict):
    """The same token used again after its holder's connection went (a reload, a dropped network, another tab)."""
    p = node.participants.get((claims["call"], claims["sub"]))
    if p is not None:
        await node.leave(p, "left")
    return await node.join(dict(claims), nothing)


def test_ca3_a_removed_person_cannot_join_the_media_again_with_the_token_they_hold():
    async def scenario() -> None:
        node = Node("sfu-a", None)
        runner = web.AppRunner(make_app(node))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        call_id, pupil = str(uuid.uuid4()), str(uuid.uuid4())
        token = signed(claims_of(call_id, pupil))
        try:
            async with aiohttp.ClientSession() as session:
                async with session.ws_connect(f"http://127.0.0.1:{port}/ws") as ws:
                    await ws.send_str(json.dumps({"type": "join", "token": token}))
                    assert json.loads((await ws.receive(timeout=5)).data)["type"] == "joined"
                    await node.apply("ParticipantLeft", {"call_id": call_id, "user_id": pupil, "reason": "removed",
                                                         "left_at": "2030-01-01T10:00:00+00:00"})
                    assert json.loads((await ws.receive(timeout=5)).data)["type"] == "removed"
                async with session.ws_connect(f"http://127.0.0.1:{port}/ws") as ws:  # the same token, again
                    await ws.send_str(json.dumps({"type": "join", "token": token}))
                    refused = json.loads((await ws.receive(timeout=5)).data)
                    assert refused["type"] == "error" and refused["code"] == "call.removed", refused
                    assert refused["message"]
                    assert (await ws.receive(timeout=5)).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            assert (call_id, pupil) not in node.participants and not node.rooms
        finally:
            await node.close()
            await runner.cleanup()

    asyncio.run(scenario())


def test_ca3_a_person_removed_before_connecting_cannot_use_the_token_they_were_given():
    async def scenario(node: Node) -> None:
        call_id, pupil, other = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
        claims = claims_of(call_id, pupil)  # /join answered, the socket not open yet
        await node.apply("ParticipantLeft", {"call_id": call_id, "user_id": pupil, "reason": "removed"})
        with pytest.raises(DomainError) as info:
            await node.join(dict(claims), nothing)
        assert info.value.code == "call.removed"
        assert not node.participants and not node.rooms
        # someone else of the call, and the same person in another call, still join; a plain leave refuses nothing
        await node.apply("ParticipantLeft", {"call_id": call_id, "user_id": other, "reason": "left"})
        assert (await node.join(claims_of(call_id, other), nothing)).user_id == other
        assert (await node.join(claims_of(str(uuid.uuid4()), pupil), nothing)).user_id == pupil

    run(scenario)


def test_ca3_a_token_issued_before_a_mute_joins_muted_and_one_before_the_unmute_unmuted():
    async def scenario(node: Node) -> None:
        call_id, pupil = str(uuid.uuid4()), str(uuid.uuid4())
        before = claims_of(call_id, pupil, muted=False)
        assert not (await node.join(dict(before), nothing)).muted
        await node.apply("ParticipantMuted", {"call_id": call_id, "user_id": pupil, "muted": True})
        assert (await rejoin(node, before)).muted, "the admin's mute holds over the older token"

        muted_token = claims_of(call_id, pupil, muted=True)  # issued while muted
        await node.apply("ParticipantMuted", {"call_id": call_id, "user_id": pupil, "muted": False})
        assert not (await rejoin(node, muted_token)).muted, "the newest word wins: unmuted since"

    run(scenario)


def test_ca5_a_token_issued_before_a_move_joins_the_room_the_person_is_in_now():
    async def scenario(node: Node) -> None:
        call_id, pupil, late = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
        main_token = claims_of(call_id, pupil)
        late_token = claims_of(call_id, late)  # admitted, not connected yet, when the rooms opened
        await node.join(dict(main_token), nothing)
        await node.apply("BreakoutsChanged", {"call_id": call_id, "rooms": {"room-1": "Room 1"},
                                              "placement": {pupil: f"{call_id}/room-1", late: f"{call_id}/room-2"}})
        assert node.participants[(call_id, pupil)].room.id == f"{call_id}/room-1"
        assert (await rejoin(node, main_token)).room.id == f"{call_id}/room-1"
        assert (await node.join(dict(late_token), nothing)).room.id == f"{call_id}/room-2"

        room_token = claims_of(call_id, pupil, room=f"{call_id}/room-1")  # issued while in the breakout room
        await node.apply("BreakoutsChanged", {"call_id": call_id, "rooms": {}, "placement": None, "closed": True})
        assert (await rejoin(node, room_token)).room.id == call_id, "called back: the main room, not room-1"
        await node.apply("BreakoutsChanged", {"call_id": call_id, "rooms": None,
                                              "placement": {pupil: f"{call_id}/room-3"}})
        assert (await rejoin(node, main_token)).room.id == f"{call_id}/room-3", "moved again after the call-back"

    run(scenario)


def test_ca4_a_token_issued_while_screens_were_allowed_shares_no_screen_once_taken_back():
    async def scenario(node: Node) -> None:
        call_id, pupil, admin = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
        allowed = claims_of(call_id, pupil, rights=["subscribe", "audio", "video", "screen"])
        admin_token = claims_of(call_id, admin, role="admin",
                                rights=["subscribe", "audio", "video", "screen", "moderate"])
        await node.apply("PermissionsChanged", {"call_id": call_id, "screen_share": False})
        assert not (await node.join(dict(allowed), nothing)).may("screen")
        assert (await node.join(dict(admin_token), nothing)).may("screen"), "the admin's own right stays"
        await node.apply("PermissionsChanged", {"call_id": call_id, "screen_share": True})
        assert (await rejoin(node, claims_of(call_id, pupil))).may("screen")

    run(scenario)


def test_ca7_a_token_of_an_ended_call_opens_no_room_and_the_call_records_shrink_to_that():
    async def scenario(node: Node) -> None:
        call_id, pupil = str(uuid.uuid4()), str(uuid.uuid4())
        claims = claims_of(call_id, pupil)
        await node.join(dict(claims), nothing)
        await node.apply("ParticipantMuted", {"call_id": call_id, "user_id": pupil, "muted": True})
        await node.apply("CallEnded", {"call_id": call_id, "reason": "ended_by_admin"})
        assert not node.participants and not node.rooms
        with pytest.raises(DomainError) as info:
            await node.join(dict(claims), nothing)
        assert info.value.code == "call.ended"
        assert [key for key in node.changes.entries if key[0] == call_id] == [(call_id, None, "ended")]

    run(scenario)


def test_ca10_what_the_node_remembers_lasts_a_token_lifetime_then_the_token_speaks_again():
    async def scenario(node: Node) -> None:
        now = [1000.0]
        node.changes.clock = lambda: now[0]
        call_id, pupil = str(uuid.uuid4()), str(uuid.uuid4())
        await node.apply("ParticipantLeft", {"call_id": call_id, "user_id": pupil, "reason": "removed"})
        await node.apply("ParticipantMuted", {"call_id": call_id, "user_id": str(uuid.uuid4()), "muted": True})
        assert len(node.changes.entries) == 2
        now[0] += node.changes.lifetime - 1  # every token issued before these commands is still valid
        with pytest.raises(DomainError):
            await node.join(claims_of(call_id, pupil), nothing)
        now[0] += 2  # every token issued before them has expired: any valid one is newer
        assert (await node.join(claims_of(call_id, pupil), nothing)).user_id == pupil
        assert not node.changes.entries, "memory is bounded by the commands of one token lifetime"

    run(scenario)


def test_ca10_a_node_refuses_a_token_issued_before_it_started_it_knows_nothing_older():
    """A restarted node lost what its last start learned (someone removed a minute ago): a token from before it
    started is refused; the client joins again (calls answers today's rights, or refuses a removed person)."""
    async def scenario(node: Node) -> None:
        call_id, pupil = str(uuid.uuid4()), str(uuid.uuid4())
        old = int(node.started) - 5
        with pytest.raises(DomainError) as info:
            await node.join(claims_of(call_id, pupil, iat=old, exp=old + 120), nothing)
        assert info.value.code == "call.token_stale"
        assert (await node.join(claims_of(call_id, pupil), nothing)).user_id == pupil, "a fresh token joins"

    run(scenario)
