"""Rooms and participants of one SFU node: who publishes what, who sees what.

A call's main room and each of its breakout rooms are rooms here; moving a
participant between rooms re-points their slots, with no renegotiation.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sfu import metrics
from sfu.forward import PublishedTrack, Slot

log = logging.getLogger("sfu")
LOUDEST = 3  # audio streams each subscriber receives: the room's loudest speakers
SPEAKER_TICK = 0.25


def leading(track: PublishedTrack) -> tuple:
    """How pictures rank: screens first, then the admin's and presenters' cameras, then by arrival."""
    return (track.source != "screen", track.owner.role not in ("admin", "presenter"), track.owner.joined)


class Participant:
    def __init__(self, user_id: str, call_id: str, role: str, rights: list[str], muted: bool,
                 notify: Callable[[dict], Awaitable[None]]):
        self.user_id = user_id
        self.call_id = call_id
        self.role = role
        self.rights = set(rights)
        self.muted = muted
        self.notify = notify
        self.room: Room | None = None
        self.pc: Any = None
        self.tracks: dict[str, PublishedTrack] = {}
        self.video_slots: list[Slot] = []
        self.audio_slots: list[Slot] = []
        self.pins: list[str] = []
        self.announced: dict[str, dict | None] = {}
        self.joined = time.monotonic()
        self.connected = False
        self.closed = False

    def may(self, right: str) -> bool:
        return right in self.rights

    def track_started(self, track: PublishedTrack) -> None:
        if self.room is not None:
            self.room.track_started(track)

    def slot_map(self) -> dict[str, dict | None]:
        return {s.mid: ({"user_id": s.source.owner.user_id, "source": s.source.source} if s.source else None)
                for s in (*self.video_slots, *self.audio_slots)}

    async def send(self, message: dict) -> None:
        if not self.closed:
            try:
                await self.notify(message)
            except (ConnectionError, RuntimeError):
                pass


class Room:
    def __init__(self, room_id: str, call_id: str):
        self.id = room_id
        self.call_id = call_id
        self.participants: dict[str, Participant] = {}
        self.speakers: list[PublishedTrack] = []
        self._dirty = False
        self._live: set[int] = set()  # the live videos when last looked (check_live)

    # -- membership ---------------------------------------------------------------------------------
    def add(self, p: Participant) -> None:
        self.participants[p.user_id] = p
        p.room = self
        self.changed()

    def remove(self, p: Participant) -> None:
        if self.participants.get(p.user_id) is p:
            del self.participants[p.user_id]
        for track in p.tracks.values():
            for slot in list(track.slots):
                slot.show(None)
        for slot in (*p.video_slots, *p.audio_slots):
            slot.show(None)
        self.changed()

    def tracks(self, kind: str) -> list[PublishedTrack]:
        return [t for p in self.participants.values() for t in p.tracks.values()
                if t.kind == kind and t.live and t.forwarding]

    def check_live(self) -> None:
        """Every second: a video that stopped sending (or sends again) changes who sees what, and what is recorded."""
        live = {id(t) for t in self.tracks("video")}
        if live != self._live:
            self._live = live
            self.changed()

    def track_started(self, track: PublishedTrack) -> None:
        metrics.tracks.labels(track.kind).inc()
        self.changed()

    def changed(self) -> None:
        """Recompute who sees what on the next turn of the loop (many changes, one pass)."""
        if not self._dirty:
            self._dirty = True
            asyncio.get_event_loop().call_soon(self._reassign)

    # -- who sees what ---------------------------------------------------------------------------------
    def _video_order(self, viewer: Participant) -> list[PublishedTrack]:
        def rank(t: PublishedTrack) -> tuple:
            key = t.key
            pinned = viewer.pins.index(key) if key in viewer.pins else len(viewer.pins)
            return (pinned, *leading(t))

        return sorted((t for t in self.tracks("video") if t.owner is not viewer), key=rank)

    def pick_speakers(self) -> list[PublishedTrack]:
        """The loudest microphones now (recent voice first, then level), one more than each receives,
        so that a speaker among them still hears the other ``LOUDEST``."""
        now = time.monotonic()
        audio = self.tracks("audio")
        audio.sort(key=lambda t: (now - t.last_voice > 2.0, t.level, t.owner.joined))
        return audio[:LOUDEST + 1]

    @staticmethod
    def _fill(slots: list[Slot], wanted: list[PublishedTrack]) -> None:
        """Keep slots already showing a wanted track; give the others the rest in order."""
        wanted = wanted[:len(slots)]
        keep = {id(s.source) for s in slots if s.source in wanted}
        free = [s for s in slots if s.source is None or id(s.source) not in keep]
        shown = {id(s.source) for s in slots if s.source is not None and id(s.source) in keep}
        for track in wanted:
            if id(track) in shown:
                continue
            free.pop(0).show(track)
            shown.add(id(track))
        for slot in free:
            slot.show(None)

    def _reassign(self) -> None:
        self._dirty = False
        self.speakers = self.pick_speakers()
        for viewer in list(self.participants.values()):
            if viewer.closed or not viewer.may("subscribe"):
                continue
            self._fill(viewer.video_slots, self._video_order(viewer))
            self._fill(viewer.audio_slots, [t for t in self.speakers if t.owner is not viewer])
            shown = viewer.slot_map()
            if shown != viewer.announced:  # also when a source left the room since the last message
                viewer.announced = shown
                asyncio.ensure_future(viewer.send({"type": "slots", "slots": shown}))

    def speaker_tick(self) -> None:
        speakers = self.pick_speakers()
        if [id(t) for t in speakers] != [id(t) for t in self.speakers]:
            metrics.speaker_switches.inc()
            self._reassign()

    # -- keeping publishers within their bitrate ------------------------------------------------------------
    async def cap_bitrates(self) -> None:
        for p in list(self.participants.values()):
            for track in list(p.tracks.values()):
                if track.kind == "video":
                    try:
                        await track.cap_bitrate()
                    except ConnectionError:
                        pass
