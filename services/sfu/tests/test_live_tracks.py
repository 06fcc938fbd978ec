"""A publisher's video that stops sending is no longer shown or recorded (CA-4, CA-6): a screen share ended in the
browser (replaceTrack(null) keeps the transceiver, no packet comes) left a black tile with everyone and, ranked
first, the recorder followed it and stored nothing. It comes back when its packets do."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from aiortc.rtp import RtpPacket

from sfu.forward import STALE_AFTER, PublishedTrack
from sfu.room import Participant, Room, leading

pytestmark = pytest.mark.unit


async def nothing(message: dict) -> None:
    return None


def published(room: Room, user_id: str, role: str, source: str) -> PublishedTrack:
    p = room.participants.get(user_id) or Participant(user_id, room.call_id, role, ["audio", "video", "screen"],
                                                     False, nothing)
    room.add(p)
    track = PublishedTrack(p, source, "video", SimpleNamespace(), set(), mid=str(len(p.tracks)))
    p.tracks[source] = track
    return track


def packet(seq: int) -> RtpPacket:
    return RtpPacket(payload_type=96, sequence_number=seq, timestamp=seq * 3000, ssrc=1000 + seq % 7,
                     payload=b"\x10" + bytes(20))


def test_a_screen_that_stopped_sending_leaves_the_room_and_the_recording_and_comes_back():
    async def scenario():
        room = Room("call-1", "call-1")
        camera = published(room, "teacher", "admin", "camera")
        screen = published(room, "pupil", "participant", "screen")
        for seq in range(3):
            await camera.on_rtp(packet(seq))
            await screen.on_rtp(packet(seq))
        assert sorted(room.tracks("video"), key=leading) == [screen, camera]  # screens lead (shown large, recorded)

        screen.last_packet -= STALE_AFTER + 0.5  # the share ended: nothing came for a while
        camera.last_packet -= STALE_AFTER - 1  # the camera still sends (a second ago)
        assert room.tracks("video") == [camera]
        room._dirty = False
        room.check_live()
        assert room._dirty  # who sees what is computed again: the screen's slot is freed
        room._dirty = False
        room.check_live()
        assert not room._dirty  # and only when it changes

        await screen.on_rtp(packet(10))  # shared again
        assert sorted(room.tracks("video"), key=leading) == [screen, camera]
        room.check_live()
        assert room._dirty

    asyncio.run(scenario())
