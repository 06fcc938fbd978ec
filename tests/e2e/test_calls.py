"""Calls end to end: real WebRTC peers (aiortc) join through the gateway's join
tokens, publish generated camera and microphone to the SFU process, and check
by the decoded pixels and samples whose media they receive (CA-1..CA-7, CA-10).
The calls service and the SFU talk over RabbitMQ both ways."""

from __future__ import annotations

import asyncio
import hashlib
import io

import av
import pytest

from tests.helpers import eventually, metric
from tests.webrtc import Peer

pytestmark = pytest.mark.e2e
LUMAS = (50, 110, 170, 230)


def start(api, room, **extra) -> dict:
    return api.ok("POST", "/calls", room["people"][0]["access_token"], status=201,
                  json={"chat_id": room["chat_id"], **extra})


def join(api, person, call_id) -> dict:
    return api.ok("POST", f"/calls/{call_id}/join", person["access_token"])


def sees(peer: Peer, user_id: str, source: str, luma: int, frames: int = 10) -> bool:
    mid = peer.slot_of(user_id, source)
    got = peer.received.get(mid) if mid else None
    return bool(got and got.frames >= frames and got.lumas and abs(got.lumas[-1] - luma) < 8)


def hears(peer: Peer, user_id: str) -> bool:
    mid = peer.slot_of(user_id, "microphone")
    got = peer.received.get(mid) if mid else None
    return bool(got and got.frames >= 20 and got.rms and got.rms[-1] > 1000)


async def until(probe, timeout: float = 20, what: str = "condition"):
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if probe():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def connect_all(api, room, call_id: str, count: int, **options) -> list[Peer]:
    peers = []
    for i in range(count):
        ticket = join(api, room["people"][i], call_id)
        peer = Peer(ticket["sfu_url"], ticket["token"], camera_luma=LUMAS[i], tone_hz=300 + 200 * i, **options)
        peers.append(await peer.connect())
    return peers


async def close_all(peers: list[Peer]) -> None:
    for peer in peers:
        await peer.close()


def test_ca1_ca10_peers_join_with_the_gateways_tokens_and_each_receives_the_others_media(api, room, platform):
    call = start(api, room, title="Физика")
    assert call["started_by"] == room["ids"][0] and call["max_participants"] == 100

    async def scenario():
        peers = await connect_all(api, room, call["call_id"], 3)
        try:
            for i, peer in enumerate(peers):
                for j in range(3):
                    if i != j:
                        await until(lambda p=peer, j=j: sees(p, room["ids"][j], "camera", LUMAS[j]),
                                    what=f"peer {i} to decode peer {j}'s camera")
                        await until(lambda p=peer, j=j: hears(p, room["ids"][j]), what=f"peer {i} to hear peer {j}")
                assert peer.slot_of(room["ids"][i], "camera") is None  # nobody is sent their own picture
        finally:
            await close_all(peers)

    asyncio.run(scenario())
    # The SFU's facts reached calls over RabbitMQ: the three were connected, then left.
    def left():
        shown = api.ok("GET", f"/calls/{call['call_id']}", room["people"][0]["access_token"])
        return not shown["participants"] and shown
    eventually(left, what="the SFU's disconnects to reach calls")
    sfu = f"http://127.0.0.1:{platform.config.sfu_port}/metrics"
    assert metric(sfu, "sfera_sfu_forwarded_packets_total", kind="video") > 0


def test_the_sfu_forwards_the_publishers_own_encoded_frames_and_runs_no_codec(api, room, platform):
    """The payload bytes a subscriber receives are the ones the publisher's encoder produced:
    nothing was decoded and encoded again on the way; and the SFU never created a codec."""
    call = start(api, room)

    async def scenario():
        sent: set[bytes] = set()
        received: list[bytes] = []
        peers = await connect_all(api, room, call["call_id"], 2)
        publisher, subscriber = peers
        transport = publisher.pc.getTransceivers()[0].sender.transport
        original_send = transport._send_rtp

        async def spy_send(data: bytes) -> None:
            if len(data) > 12 and data[1] & 0x7F not in (72, 73, 200, 201, 202, 203, 204, 205, 206, 207):
                sent.add(hashlib.sha1(rtp_payload(data)).digest())
            await original_send(data)

        transport._send_rtp = spy_send
        mid = None

        def shown():
            nonlocal mid
            mid = subscriber.slot_of(room["ids"][0], "camera")
            return mid

        await until(shown, what="the publisher's camera in a slot")
        receiver = next(t.receiver for t in subscriber.pc.getTransceivers() if t.mid == mid)
        original_handle = receiver._handle_rtp_packet

        async def spy_handle(packet, arrival_time_ms):
            received.append(hashlib.sha1(packet.payload).digest())
            await original_handle(packet, arrival_time_ms)

        receiver._handle_rtp_packet = spy_handle
        await until(lambda: len(received) >= 60, what="60 forwarded video packets")
        await close_all(peers)
        return sent, received

    sent, received = asyncio.run(scenario())
    assert set(received) <= sent, "a packet arrived that the publisher never sent: something re-encoded it"
    sfu = f"http://127.0.0.1:{platform.config.sfu_port}/metrics"
    assert metric(sfu, "sfera_sfu_codec_instances_total", what="decoder") == 0
    assert metric(sfu, "sfera_sfu_codec_instances_total", what="encoder") == 0
    assert metric(sfu, "sfera_sfu_keyframe_requests_total", reason="subscribe", outcome="sent") > 0


def rtp_payload(data: bytes) -> bytes:
    """The payload of an unencrypted RTP packet (header, CSRCs and extension skipped)."""
    cc = data[0] & 0x0F
    offset = 12 + 4 * cc
    if data[0] & 0x10:
        length = int.from_bytes(data[offset + 2:offset + 4], "big")
        offset += 4 + 4 * length
    end = len(data) - (data[-1] if data[0] & 0x20 else 0)
    return data[offset:end]


def test_ca3_ca4_the_admin_mutes_removes_and_grants_screen_sharing_and_the_sfu_obeys(api, room):
    call = start(api, room)
    admin, pupil, other = room["people"][:3]
    admin_id, pupil_id, other_id = room["ids"][:3]

    async def scenario():
        peers = await connect_all(api, room, call["call_id"], 2)
        watcher, talker = peers
        ticket = join(api, other, call["call_id"])
        assert "screen" not in ticket["rights"]
        sharer = await Peer(ticket["sfu_url"], ticket["token"], screen_luma=200).connect()
        peers.append(sharer)
        try:
            await until(lambda: hears(watcher, pupil_id), what="the pupil's voice")
            # CA-4: a participant's screen is not forwarded until the admin allows it
            assert sharer.answer["not_forwarded"]
            await asyncio.sleep(1.5)
            assert watcher.slot_of(other_id, "screen") is None
            api.ok("PUT", f"/calls/{call['call_id']}/permissions", admin["access_token"], json={"screen_share": True})
            await sharer.wait_for("rights")
            await until(lambda: sees(watcher, other_id, "screen", 200, frames=3), what="the shared screen")
            # CA-3: muting stops the microphone at the SFU, not only in the client
            api.ok("POST", f"/calls/{call['call_id']}/participants/{pupil_id}/mute", admin["access_token"])
            await talker.wait_for("muted")
            await until(lambda: watcher.slot_of(pupil_id, "microphone") is None, what="the muted voice to go")
            api.ok("DELETE", f"/calls/{call['call_id']}/mute", pupil["access_token"])
            await until(lambda: watcher.slot_of(pupil_id, "microphone") is not None, what="the voice back")
            # a hand, seen by everyone in the participant list
            api.ok("PUT", f"/calls/{call['call_id']}/hand", pupil["access_token"], json={"raised": True})
            shown = api.ok("GET", f"/calls/{call['call_id']}", other["access_token"])
            assert [p["hand_raised"] for p in shown["participants"] if p["user_id"] == pupil_id] == [True]
            # removing: the SFU drops the connection and the person cannot come back
            api.ok("DELETE", f"/calls/{call['call_id']}/participants/{other_id}", admin["access_token"])
            await sharer.wait_for("removed")
            await until(lambda: watcher.slot_of(other_id, "screen") is None, what="the removed screen to go")
        finally:
            await close_all(peers)

    asyncio.run(scenario())
    refused = api.call("POST", f"/calls/{call['call_id']}/join", other["access_token"])
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "call.removed"
    # nor do they read the call any more: who is in the lesson is not theirs to see (it was, participants and all)
    hidden = api.call("GET", f"/calls/{call['call_id']}", other["access_token"])
    assert hidden.status_code == 403 and hidden.json()["error"]["code"] == "call.removed"
    # not the admin: no controls
    denied = api.call("POST", f"/calls/{call['call_id']}/participants/{admin_id}/mute", pupil["access_token"])
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "call.admin_only"


def test_ca5_breakout_rooms_separate_the_media_and_calling_back_joins_it_again(api, room):
    call = start(api, room)
    admin = room["people"][0]
    ids = room["ids"]

    async def scenario():
        peers = await connect_all(api, room, call["call_id"], 4)
        try:
            await until(lambda: sees(peers[1], ids[2], "camera", LUMAS[2]), what="pupils to see each other")
            api.ok("POST", f"/calls/{call['call_id']}/breakouts", admin["access_token"],
                   json={"count": 2, "assignment": {ids[1]: 1, ids[2]: 2, ids[3]: 1}})
            await peers[1].wait_for("moved")
            await until(lambda: peers[1].slot_of(ids[2], "camera") is None, what="room 2 out of room 1's sight")
            await until(lambda: sees(peers[1], ids[3], "camera", LUMAS[3]), what="room 1 to see each other")
            assert peers[1].slot_of(ids[0], "camera") is None  # the admin stays in the main room
            # moved while running
            api.ok("POST", f"/calls/{call['call_id']}/breakouts/moves", admin["access_token"],
                   json={"user_id": ids[2], "room": "room-1"})
            await until(lambda: sees(peers[1], ids[2], "camera", LUMAS[2]), what="the moved pupil in room 1")
            api.ok("DELETE", f"/calls/{call['call_id']}/breakouts", admin["access_token"])
            await until(lambda: sees(peers[1], ids[0], "camera", LUMAS[0]), what="everyone back in the main room")
        finally:
            await close_all(peers)

    asyncio.run(scenario())


def test_ca6_ca7_a_recording_lands_in_the_chat_and_ending_the_call_ends_it_for_all(api, room):
    call = start(api, room)
    admin, pupil = room["people"][:2]

    async def scenario():
        peers = await connect_all(api, room, call["call_id"], 2)
        try:
            await until(lambda: sees(peers[1], room["ids"][0], "camera", LUMAS[0]), what="the admin's camera")
            api.ok("POST", f"/calls/{call['call_id']}/recording", admin["access_token"])
            for peer in peers:  # everyone is told it records, at once
                assert (await peer.wait_for("recording"))["recording"] is True
            await asyncio.sleep(4)
            ended = api.ok("POST", f"/calls/{call['call_id']}/end", admin["access_token"])
            assert ended["ended_reason"] == "ended_by_admin"
            for peer in peers:
                await peer.wait_for("ended")
        finally:
            await close_all(peers)

    asyncio.run(scenario())
    refused = api.call("POST", f"/calls/{call['call_id']}/join", pupil["access_token"])
    assert refused.status_code == 410 and refused.json()["error"]["code"] == "call.ended"

    def recording():
        page = api.ok("GET", f"/chats/{room['chat_id']}/messages", pupil["access_token"])
        return next((m for m in page["items"] if any(a["kind"] == "video" for a in m["attachments"])), None)

    message = eventually(recording, timeout=30, what="the recording in the call's chat")
    assert message["author_id"] == room["ids"][0]
    (file,) = message["attachments"]
    body = api.call("GET", f"/chats/{room['chat_id']}/attachments/{file['attachment_id']}",
                    pupil["access_token"]).content
    with av.open(io.BytesIO(body)) as container:
        video = container.streams.video[0]
        assert video.codec_context.name == "vp8" and (video.width, video.height) == (320, 240)
        packets = [p for p in container.demux(video) if p.size]
    assert len(packets) > 30  # about four seconds at 30 frames per second, remuxed as they came
