"""Calls's aggregates (docs/rules.md CA-*).

- ``Call``: one call, lesson or broadcast from its start to its end: who may
  join, who is in (and in which room), roles and permissions, raised hands,
  breakout rooms, recording. The starter is its admin (CA-2).
- ``SubjectSlot``: the lesson under way for a (class, subject), so that a
  second one cannot start before it ends (CA-8); its id is derived from the
  pair, so two racing starts collide on the same aggregate version.
- ``Whiteboard``: a call's shared board (CA-3, beta): the strokes on it, oldest
  first, bounded; its id is derived from the call's.
- ``LessonInfo``: calls's copy of a published remote lesson from the e-journal
  bridge (CA-2, EJ-5): who teaches it, the class, the subject, its chat key.

Join tokens (CA-10) are short-lived JWTs the SFU verifies with the shared
``SFERA_SFU_TOKEN_SECRET``; they say who joins which room with which rights
(``shared.contracts.join_token``: the SFU checks them without this module).
"""

from __future__ import annotations

import random
import time
import uuid
from datetime import datetime

from eventsourcing.domain import Aggregate, event

from shared.config import env_int
from shared.contracts import outdated
from shared.contracts.api.calls import (  # CA-3, CA-5, CA-9: the API says them too
    BOARD_MAX_POINTS,
    BOARD_MAX_STROKES,
    MAX_BREAKOUTS,
    MAX_PRESENTERS,
)
from shared.contracts.join_token import join_token_ttl, sign_join_token
from shared.errors import Conflict, Forbidden, Gone, Invalid, NotFound

NAMESPACE = uuid.UUID("3f1d2c4b-8a6e-4d9f-b1c7-52e0a9d4c6f3")
MAX_PARTICIPANTS = 100  # CA-1
MAIN_ROOM = "main"
KINDS = ("call", "lesson", "broadcast")
ROLES = ("admin", "presenter", "participant", "viewer")


def broadcast_max_viewers() -> int:
    return env_int("SFERA_BROADCAST_MAX_VIEWERS", 1000)


def derived_id(kind: str, *parts: object) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, ":".join([kind, *map(str, parts)]))


def room_id(call_id: uuid.UUID, room: str) -> str:
    """The SFU's room: the call's main room or one of its breakout rooms."""
    return str(call_id) if room == MAIN_ROOM else f"{call_id}/{room}"


class Call(Aggregate):
    # The SFU node carrying the call (issue #17): calls assigns it at a join, to a live node; None before, and
    # after the node died (a rejoin assigns another). Class defaults: calls saved before nodes read as unassigned.
    node: str | None = None
    node_url: str | None = None
    lost_nodes: tuple[str, ...] = ()  # nodes that died under the call: their late facts count no more

    @event("Started")
    def __init__(self, kind: str, started_by: uuid.UUID, title: str, organization_id: uuid.UUID | None,
                 chat_id: uuid.UUID | None, invited: list[str] | None, lesson_id: uuid.UUID | None = None,
                 class_id: uuid.UUID | None = None, subject: str | None = None, presenters: list[str] | None = None,
                 started_at: datetime | None = None):
        self.kind = kind
        self.started_by = started_by
        self.title = title
        self.organization_id = organization_id
        self.chat_id = chat_id
        # None: everyone the starter's chat (or organization, for broadcasts) admits; else these user ids.
        self.invited = invited
        self.lesson_id = lesson_id
        self.class_id = class_id
        self.subject = subject
        self.presenters = list(presenters or [])
        self.started_at = started_at
        self.participants: dict[str, dict] = {}
        self.screen_share_allowed = False  # CA-4: participants share only when the admin allows it
        self.breakouts: dict[str, str] = {}  # room id -> name (CA-5)
        self.recording: dict | None = None
        self.recordings: list[dict] = []
        self.ended_at: datetime | None = None
        self.ended_reason: str | None = None

    # -- queries --------------------------------------------------------------------------------
    @property
    def ended(self) -> bool:
        return self.ended_at is not None

    @property
    def max_participants(self) -> int:
        return broadcast_max_viewers() + MAX_PRESENTERS if self.kind == "broadcast" else MAX_PARTICIPANTS

    def role_of(self, user_id: uuid.UUID) -> str:
        uid = str(user_id)
        if user_id == self.started_by:
            return "admin"
        if self.kind == "broadcast":
            return "presenter" if uid in self.presenters else "viewer"
        return "participant"

    def present(self, now: float) -> list[str]:
        """Who holds a seat: connected to the SFU, or admitted within a token's lifetime and not yet connected."""
        ttl = join_token_ttl()
        return [uid for uid, p in self.participants.items()
                if p["connected"] or (p["admitted"] and now - p["admitted_at"] < ttl)]

    def rights(self, user_id: uuid.UUID) -> list[str]:
        role = self.role_of(user_id)
        if role == "viewer":
            return ["subscribe"]
        rights = ["subscribe", "audio", "video"]
        if role in ("admin", "presenter") or self.screen_share_allowed:
            rights.append("screen")
        if role == "admin":
            rights.append("moderate")
        return rights

    def check_admin(self, actor_id: uuid.UUID) -> None:
        if actor_id != self.started_by:
            raise Forbidden("call.admin_only", "Only the call's admin can do this.")

    def check_running(self) -> None:
        if self.ended:
            raise Gone("call.ended", "This call has ended.")

    def check_in_call(self, user_id: uuid.UUID) -> dict:
        p = self.participants.get(str(user_id))
        if p is None or not (p["connected"] or p["admitted"]):
            raise NotFound("call.not_a_participant", "This person is not in the call.")
        return p

    # -- joining (CA-1, CA-10) ------------------------------------------------------------------------
    def check_not_removed(self, user_id: uuid.UUID) -> None:
        """CA-3: whom the call's admin removed neither comes back nor reads the call (its people, its board)."""
        p = self.participants.get(str(user_id))
        if p and p.get("removed"):
            raise Forbidden("call.removed", "The call's admin removed you from this call.")

    def admit(self, user_id: uuid.UUID, now: float) -> None:
        self.check_running()
        uid = str(user_id)
        self.check_not_removed(user_id)
        p = self.participants.get(uid)
        if p is None or not (p["connected"] or p["admitted"]):
            if len(self.present(now)) >= self.max_participants:
                raise Conflict("call.full", f"This call already has {self.max_participants} participants, "
                                            "the most a call can have.", {"limit": self.max_participants})
        self._admitted(user_id=uid, role=self.role_of(user_id), at=now)

    @event("ParticipantAdmitted")
    def _admitted(self, user_id: str, role: str, at: float) -> None:
        p = self.participants.setdefault(user_id, {"connected": False, "hand": False, "muted": False,
                                                   "room": MAIN_ROOM, "removed": False, "joined_at": None})
        p.update(role=role, admitted=True, admitted_at=at)

    @event("ParticipantJoined")
    def connected(self, user_id: str, at: datetime, fact: list | None = None) -> None:
        """``fact``: the SFU node's [node, sequence] of the fact that says so (``fact_outdated``)."""
        p = self.participants[user_id]
        p.update(connected=True, admitted=False)
        if p["joined_at"] is None:
            p["joined_at"] = at
        if fact is not None:
            p["fact"] = list(fact)

    def fact_outdated(self, user_id: str, node: str | None, sequence: int | None) -> bool:
        """Whether a media fact about the person, numbered ``sequence`` by ``node``, is older than (or as old as)
        the last one of that node applied: the node's connects and disconnects come through separate queues, and
        a flapping connection's late connect seated a ghost. Another node's numbers are its own: not compared."""
        last = (self.participants.get(user_id) or {}).get("fact")
        return last is not None and last[0] == node and outdated(sequence, last[1])

    def disconnect(self, user_id: str, reason: str, fact: list | None = None) -> bool:
        p = self.participants.get(user_id)
        if p is None or not (p["connected"] or p["admitted"]):
            if p is not None and fact is not None:  # kept: the connect it came before then changes nothing
                self.fact_seen(user_id, fact)
            return False
        self._left(user_id=user_id, reason=reason, fact=fact)
        return True

    def fact_seen(self, user_id: str, fact: list) -> None:
        """A node's fact about the person that changes nothing now, kept for its number: an older one of that
        node that comes after it then changes nothing either."""
        if self.participants.get(user_id, {}).get("fact") != list(fact):
            self._fact_seen(user_id=user_id, fact=fact)

    @event("MediaFactSeen")
    def _fact_seen(self, user_id: str, fact: list) -> None:
        self.participants[user_id]["fact"] = list(fact)

    @event("ParticipantLeft")
    def _left(self, user_id: str, reason: str, fact: list | None = None) -> None:
        p = self.participants[user_id]
        if fact is not None:
            p["fact"] = list(fact)
        p.update(connected=False, admitted=False, hand=False)
        if reason == "removed":
            p["removed"] = True

    # -- the SFU node (issue #17) ------------------------------------------------------------------------
    @event("NodeAssigned")
    def assign_node(self, node: str, url: str) -> None:
        self.node = node
        self.node_url = url

    def lose_node(self, node: str) -> list[str]:
        """The node carrying the call died: everyone in the call through it is gone, as if they left (reason
        ``node_lost``); the call has no node until a rejoin assigns a live one. Returns who was gone."""
        gone = [uid for uid, p in self.participants.items() if p["connected"] or p["admitted"]]
        for uid in gone:
            self._left(user_id=uid, reason="node_lost")
        self._node_lost(node=node)
        return gone

    @event("NodeLost")
    def _node_lost(self, node: str) -> None:
        self.node = None
        self.node_url = None
        self.lost_nodes = (*self.lost_nodes, node)

    # -- controls (CA-3, CA-4, CA-7) -------------------------------------------------------------------
    @event("HandRaised")
    def set_hand(self, user_id: str, raised: bool) -> None:
        self.participants[user_id]["hand"] = raised

    @event("ParticipantMuted")
    def mute(self, user_id: str, by: str) -> None:
        self.participants[user_id]["muted"] = True

    @event("ParticipantUnmuted")
    def unmute(self, user_id: str) -> None:
        self.participants[user_id]["muted"] = False

    @event("PermissionsChanged")
    def set_permissions(self, screen_share: bool) -> None:
        self.screen_share_allowed = screen_share

    @event("Ended")
    def end(self, by: str | None, reason: str, at: datetime) -> None:
        self.ended_at = at
        self.ended_reason = reason
        for p in self.participants.values():
            p.update(connected=False, admitted=False, hand=False)
        self.breakouts = {}
        self.recording = None

    # -- breakout rooms (CA-5) -------------------------------------------------------------------------
    @event("BreakoutsOpened")
    def open_breakouts(self, rooms: dict[str, str], assignment: dict[str, str]) -> None:
        self.breakouts = dict(rooms)
        for uid, room in assignment.items():
            self.participants[uid]["room"] = room

    @event("ParticipantMoved")
    def move(self, user_id: str, room: str) -> None:
        self.participants[user_id]["room"] = room

    @event("BreakoutsClosed")
    def close_breakouts(self) -> None:
        self.breakouts = {}
        for p in self.participants.values():
            p["room"] = MAIN_ROOM

    # -- recording (CA-6) -------------------------------------------------------------------------------
    @event("RecordingStarted")
    def start_recording(self, recording_id: str, by: str, at: datetime) -> None:
        self.recording = {"recording_id": recording_id, "started_at": at}

    @event("RecordingStopped")
    def stop_recording(self, recording_id: str) -> None:
        self.recording = None

    @event("RecordingReady")
    def recording_ready(self, recording_id: str, blob_key: str, size: int, media_type: str, duration: float,
                        file_name: str, chat_id: str | None, admin_id: str) -> None:
        self.recordings.append({"recording_id": recording_id, "blob_key": blob_key, "size": size,
                                "media_type": media_type, "duration": duration, "file_name": file_name})


def plan_breakouts(count: int, participants: list[str], manual: dict[str, int] | None,
                   rng: random.Random | None = None) -> tuple[dict[str, str], dict[str, str]]:
    """CA-5: ``count`` rooms (1..50); people assigned by hand (user -> room number from 1) or,
    for everyone not placed by hand, at random as evenly as possible."""
    if not 1 <= count <= MAX_BREAKOUTS:
        raise Invalid("call.breakouts_count", f"A call has 1 to {MAX_BREAKOUTS} breakout rooms.",
                      {"max": MAX_BREAKOUTS})
    rooms = {f"room-{i}": f"Room {i}" for i in range(1, count + 1)}
    assignment: dict[str, str] = {}
    for uid, number in (manual or {}).items():
        if uid not in participants:
            raise NotFound("call.not_a_participant", "This person is not in the call.", {"user_id": uid})
        if not 1 <= number <= count:
            raise Invalid("call.no_such_room", f"Rooms are numbered 1 to {count}.", {"room": number})
        assignment[uid] = f"room-{number}"
    rest = [uid for uid in participants if uid not in assignment]
    (rng or random.Random()).shuffle(rest)
    sizes = {r: 0 for r in rooms}
    for r in assignment.values():
        sizes[r] += 1
    for uid in rest:
        smallest = min(sizes, key=lambda r: (sizes[r], int(r.split("-")[1])))
        assignment[uid] = smallest
        sizes[smallest] += 1
    return rooms, assignment


class SubjectSlot(Aggregate):
    """CA-8: the lesson under way for one (class, subject); ``call_id`` is None between lessons."""

    @event("Created")
    def __init__(self, class_id: uuid.UUID, subject: str):
        self.class_id = class_id
        self.subject = subject
        self.call_id: uuid.UUID | None = None

    @staticmethod
    def create_id(class_id: uuid.UUID, subject: str) -> uuid.UUID:
        return derived_id("subject-slot", class_id, subject.casefold())

    @event("Taken")
    def take(self, call_id: uuid.UUID) -> None:
        self.call_id = call_id

    @event("Freed")
    def free(self, call_id: uuid.UUID) -> None:
        self.call_id = None


class LessonInfo(Aggregate):
    """A remote lesson the e-journal published (CA-2, EJ-4): enough to start its call."""

    @event("Recorded")
    def __init__(self, lesson_id: uuid.UUID, facts: dict, version: int | None = None):
        """``version``: the bridge's lesson's, as of which these facts are (``update``)."""
        self.lesson_id = lesson_id
        self.facts = facts
        self.call_id: uuid.UUID | None = None
        if version is not None:
            self.facts_version = version

    @staticmethod
    def create_id(lesson_id: uuid.UUID, **_: object) -> uuid.UUID:
        return derived_id("lesson", lesson_id)

    @event("Updated")
    def update(self, facts: dict, version: int | None = None) -> None:
        """``version``: the bridge's lesson's, as of which these facts are (its events' ``sequence``)."""
        self.facts = facts
        if version is not None:
            self.facts_version = version

    def facts_outdated(self, version: int | None) -> bool:
        """Whether facts of that lesson version are older than (or as old as) those kept: a late LessonPublished
        after LessonCancelled made a cancelled lesson startable again. None (from before versions): never."""
        return outdated(version, getattr(self, "facts_version", 0))

    @event("EndRequested")
    def end_requested(self, version: int) -> None:
        """The journal ended the lesson as of this version, whether or not a call was under way."""
        self.ended_version = max(version, getattr(self, "ended_version", 0))

    def ended_after(self, version: int | None) -> bool:
        """Whether the journal ended the lesson after a start of that version was asked: that start starts nothing
        (it came late: a retry while the teacher ended the lesson)."""
        return version is not None and version < getattr(self, "ended_version", 0)

    @event("CallLinked")
    def link_call(self, call_id: uuid.UUID | None) -> None:
        self.call_id = call_id


class Whiteboard(Aggregate):
    """CA-3 (beta): the strokes on a call's board, oldest first. Whoever is in the call draws (a broadcast's
    viewers only look); each undoes their own strokes; the admin erases any stroke or clears the board.
    ``revision`` counts the changes (the aggregate's version less its creation)."""

    @event("Created")
    def __init__(self, call_id: uuid.UUID):
        self.call_id = call_id
        self.strokes: list[dict] = []

    @staticmethod
    def create_id(call_id: uuid.UUID) -> uuid.UUID:
        return derived_id("whiteboard", call_id)

    @property
    def revision(self) -> int:
        return self.version - 1

    @property
    def points(self) -> int:
        return sum(len(s["points"]) // 2 for s in self.strokes)

    def stroke(self, stroke_id: str) -> dict | None:
        return next((s for s in self.strokes if s["stroke_id"] == stroke_id), None)

    def check_room_for(self, points: int) -> None:
        if len(self.strokes) >= BOARD_MAX_STROKES or self.points + points > BOARD_MAX_POINTS:
            raise Conflict("call.whiteboard_full", "The whiteboard is full: the admin clears it, or undo strokes.",
                           {"max_strokes": BOARD_MAX_STROKES, "max_points": BOARD_MAX_POINTS})

    # The events name their call: the outbox publishes each without the board's state.
    def draw(self, stroke: dict) -> None:
        self._drawn(call_id=str(self.call_id), stroke=stroke)

    def erase(self, stroke_id: str, by: str) -> None:
        self._erased(call_id=str(self.call_id), stroke_id=stroke_id, by=by)

    def clear(self, by: str) -> None:
        self._cleared(call_id=str(self.call_id), by=by)

    @event("Drawn")
    def _drawn(self, call_id: str, stroke: dict) -> None:
        self.strokes.append(stroke)

    @event("Erased")
    def _erased(self, call_id: str, stroke_id: str, by: str) -> None:
        self.strokes = [s for s in self.strokes if s["stroke_id"] != stroke_id]

    @event("Cleared")
    def _cleared(self, call_id: str, by: str) -> None:
        self.strokes = []


# -- join tokens (CA-10) ------------------------------------------------------------------------------
def issue_join_token(call: Call, user_id: uuid.UUID, now: float | None = None) -> tuple[str, int]:
    now = time.time() if now is None else now
    ttl = join_token_ttl()
    p = call.participants[str(user_id)]
    claims = {"sub": str(user_id), "call": str(call.id),
              "room": room_id(call.id, p["room"]), "role": p["role"], "rights": call.rights(user_id),
              "muted": p["muted"], "kind": call.kind, "iat": int(now), "exp": int(now) + ttl,
              "jti": uuid.uuid4().hex}
    if call.node is not None:  # the SFU refuses a token for another node (call.wrong_node): the room stays whole
        claims["node"] = call.node
    return sign_join_token(claims), ttl

