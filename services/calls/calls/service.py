"""calls's nameko entrypoints. ``actor_id`` is the gateway's verified token subject.

Chats' members come from messaging and school roles from school (RPC); the
e-journal bridge's lesson events and the SFU's media facts arrive as events.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid

from nameko.events import BROADCAST, event_handler
from nameko.timer import timer

from calls import handlers
from calls.application import CallsApplication, participant_views
from calls.domain import Call, room_id
from calls.nodes import NodeRegistry, SfuNodes
from shared.bus.consumer import consume_event
from shared.config import env_str
from shared.contracts import CloudEvent, get_contract, parse_event
from shared.contracts.api import calls as schemas
from shared.contracts.ejournal import subject_chat_key
from shared.errors import Conflict, Forbidden, NotFound
from shared.ice import ice_servers
from shared.rpc import TransientRpcProxy
from shared.service import EventSourcedApp, Observability, rpc, to_id

log = logging.getLogger("calls")
SWEEP_SECONDS = 5.0  # how often a running call is checked against its chat's members when only its people read it


class Sweeps:
    """When each running call was last checked against its chat's members, in this process (nameko makes a service
    instance per request: this is the module's)."""

    def __init__(self, every: float = SWEEP_SECONDS, clock=time.monotonic):
        self.every, self.clock = every, clock
        self.at: dict[uuid.UUID, float] = {}
        self.lock = threading.Lock()

    def due(self, call_id: uuid.UUID) -> bool:
        with self.lock:
            return self.clock() - self.at.get(call_id, float("-inf")) >= self.every

    def mark(self, call_id: uuid.UUID) -> None:
        now = self.clock()
        with self.lock:
            if len(self.at) > 10_000:  # calls long over: forget them
                self.at = {c: t for c, t in self.at.items() if now - t < 60 * self.every}
            self.at[call_id] = now


SWEPT = Sweeps()
BROADCASTER_ROLES = {"admin", "teacher", "class_teacher"}


def sfu_url() -> str:
    """Where clients open the SFU's signaling WebSocket when no node reports (a call on a node gets the node's)."""
    return env_str("SFERA_SFU_URL", "ws://127.0.0.1:8300/ws")


def call_view(call: Call) -> dict:
    return schemas.CallView().dump({
        **vars(call), "call_id": call.id, "invited_user_ids": call.invited, "presenter_ids": call.presenters,
        "screen_share_allowed": call.screen_share_allowed, "breakout_rooms": call.breakouts,
        "recording": call.recording is not None, "participants": participant_views(call),
        "max_participants": call.max_participants,
        "started_at": call.started_at.isoformat() if call.started_at else None,
        "ended_at": call.ended_at.isoformat() if call.ended_at else None})


class CallsService:
    name = "calls"

    app: CallsApplication = EventSourcedApp(CallsApplication)
    observability = Observability()
    messaging = TransientRpcProxy("messaging")
    school = TransientRpcProxy("school")
    nodes: NodeRegistry = SfuNodes()

    @rpc
    def ping(self) -> dict:
        """Liveness through RPC: answers with the store's head position."""
        return {"service": self.name, "position": self.app.process_recorder.max_notification_id() or 0}

    def _members(self, call: Call) -> list[str]:
        if call.chat_id is None:
            return []
        try:
            return self.messaging.members_of(str(call.chat_id))
        except NotFound:
            return []

    def _members_now(self, call_id: str) -> tuple[Call, list[str]]:
        """The call as its chat's members now allow it (``revoke_lost_access``: who lost access is out, a call
        whose admin lost it ended), and those members."""
        call = self.app.call(to_id(call_id, "call.not_found"))
        members = self._members(call)
        SWEPT.mark(call.id)
        return self.app.revoke_lost_access(call.id, members), members

    def _visible(self, actor_id: str, call_id: str) -> Call:
        """Who may join the call now sees it: having been in it is not enough (one who left the chat since no
        longer reads who is in it). Someone in the call now reads it without messaging asked each time (everyone
        in a call reads it every few seconds: a broadcast's thousand viewers asked it 250 times a second); the
        call is swept at most every ``SWEEP_SECONDS`` instead, and whoever lost access is then out of it."""
        call = self.app.call(to_id(call_id, "call.not_found"))
        actor = to_id(actor_id)
        present = call.participants.get(str(actor))
        if present is not None and (present["connected"] or present["admitted"]) and not call.ended \
                and not SWEPT.due(call.id):
            return call
        call, members = self._members_now(call_id)
        if not self.app.may_join(call, actor, members):
            raise NotFound("call.not_found", "No such call.")
        call.check_not_removed(actor)  # a removed person no longer reads who is in the lesson
        return call

    # -- starting (CA-2, CA-9) ------------------------------------------------------------------------
    @rpc
    def start_call(self, actor_id: str, request: dict) -> dict:
        command = schemas.StartCallInput().load_command(request)
        chat = self.messaging.get_chat(actor_id, str(command.chat_id))
        if chat.get("read_only_reason"):  # CH-1: a dialog its two people may no longer talk in takes no call either
            self.messaging.check_writer(actor_id, str(command.chat_id))
        may_broadcast = False
        if command.kind == "broadcast":
            if not chat.get("organization_id"):
                raise Conflict("call.broadcast_needs_school", "Broadcasts go to a school's chat.")
            mine = self.school.my_organizations(actor_id)
            may_broadcast = any(m["organization"]["organization_id"] == chat["organization_id"]
                                and BROADCASTER_ROLES & set(m["membership"]["roles"]) for m in mine)
        # CA-8: a class's subject chat holds that subject's lessons; a call in it takes the subject's slot.
        slot = (to_id(chat["class_id"]), chat["subject"]) if (
            chat.get("kind") == "subject" and chat.get("class_id") and chat.get("subject")) else None
        call = self.app.start_call(to_id(actor_id), command, chat["member_ids"],
                                   to_id(chat["organization_id"]) if chat.get("organization_id") else None,
                                   chat.get("name"), may_broadcast, subject_slot=slot, chat_kind=chat.get("kind"))
        return call_view(call)

    def _lesson_chat(self, actor_id: str, facts: dict) -> uuid.UUID | None:
        key = subject_chat_key(facts["provider_id"], facts["external_class_id"], facts["subject"],
                               facts["external_teacher_id"])
        try:
            return to_id(self.messaging.chat_by_key(actor_id, key)["chat_id"])
        except (NotFound, Forbidden):
            return None

    @rpc
    def start_lesson(self, actor_id: str, lesson_id: str) -> dict:
        """CA-2, EJ-5: the teacher starts a published remote lesson's call (CA-8 holds)."""
        lesson = to_id(lesson_id, "lesson.not_found")
        info = self.app.lesson_info(lesson)
        chat_id = self._lesson_chat(actor_id, info.facts) if info else None
        return call_view(self.app.start_lesson(to_id(actor_id), lesson, chat_id))

    @rpc
    def lesson_call(self, actor_id: str, lesson_id: str) -> dict:
        """The call of a lesson, for the diary's join button (EJ-5, CA-10)."""
        lesson = to_id(lesson_id, "lesson.not_found")
        if self.app.lesson_info(lesson) is None:
            raise NotFound("lesson.not_found", "No such published remote lesson.")
        call = self.app.lesson_call(lesson)
        if call is None or call.ended:
            raise NotFound("call.not_started", "This lesson's call has not started.")
        return call_view(self._visible(actor_id, str(call.id)))

    @rpc
    def lesson_calls(self, actor_id: str, lesson_ids: list[str]) -> dict:
        """The running calls of these lessons (a timetable's "join" buttons, EJ-5, SC-13):
        lesson id -> the call's id, start, and whether this person may join it."""
        actor = to_id(actor_id)
        running = {}
        for lesson_id in dict.fromkeys(lesson_ids):
            call = self.app.lesson_call(to_id(lesson_id, "lesson.not_found"))
            if call is None or call.ended:
                continue
            may_join = self.app.may_join(call, actor, self._members(call))
            running[str(lesson_id)] = {"call_id": str(call.id), "title": call.title,
                                       "started_at": call.started_at.isoformat() if call.started_at else None,
                                       "started_by": str(call.started_by), "may_join": may_join}
        return running

    # -- joining (CA-1, CA-10) -----------------------------------------------------------------------------
    @rpc
    def get_call(self, actor_id: str, call_id: str) -> dict:
        return call_view(self._visible(actor_id, call_id))

    @rpc
    def join(self, actor_id: str, call_id: str) -> dict:
        """The chat's members now decide (``_members_now``); in a dialog, only while CH-1 still lets its two people
        talk, as for its start (messaging's ``check_writer``, asked of a call's chat, not of a lesson's)."""
        call, members = self._members_now(call_id)
        actor = to_id(actor_id)
        if call.kind != "lesson" and call.chat_id is not None and not call.ended and \
                self.app.may_join(call, actor, members):
            self.messaging.check_writer(actor_id, str(call.chat_id))
        call, token, ttl = self.app.join(actor, call.id, members, self.nodes)
        p = call.participants[actor_id]
        return schemas.JoinView().dump({"call": call_view(call), "token": token, "expires_in": ttl,
                                        "sfu_url": call.node_url or sfu_url(), "room": room_id(call.id, p["room"]),
                                        "rights": call.rights(to_id(actor_id)), "ice_servers": ice_servers(actor_id)})

    @rpc
    def leave(self, actor_id: str, call_id: str) -> dict:
        return call_view(self.app.leave(to_id(actor_id), to_id(call_id, "call.not_found")))

    # -- controls (CA-3, CA-4, CA-7) ------------------------------------------------------------------------
    @rpc
    def raise_hand(self, actor_id: str, call_id: str, raised: bool) -> dict:
        return call_view(self.app.raise_hand(to_id(actor_id), to_id(call_id, "call.not_found"), raised))

    @rpc
    def lower_hand_of(self, actor_id: str, call_id: str, user_id: str) -> dict:
        return call_view(self.app.lower_hand_of(to_id(actor_id), to_id(call_id, "call.not_found"),
                                                to_id(user_id, "call.not_a_participant")))

    @rpc
    def mute(self, actor_id: str, call_id: str, user_id: str) -> dict:
        return call_view(self.app.mute(to_id(actor_id), to_id(call_id, "call.not_found"),
                                       to_id(user_id, "call.not_a_participant")))

    @rpc
    def unmute_self(self, actor_id: str, call_id: str) -> dict:
        return call_view(self.app.unmute_self(to_id(actor_id), to_id(call_id, "call.not_found")))

    @rpc
    def remove(self, actor_id: str, call_id: str, user_id: str) -> dict:
        return call_view(self.app.remove(to_id(actor_id), to_id(call_id, "call.not_found"),
                                         to_id(user_id, "call.not_a_participant")))

    @rpc
    def set_permissions(self, actor_id: str, call_id: str, permissions: dict) -> dict:
        return call_view(self.app.set_permissions(to_id(actor_id), schemas.PermissionsInput().load_command(
            permissions, call_id=to_id(call_id, "call.not_found"))))

    @rpc
    def end(self, actor_id: str, call_id: str) -> dict:
        return call_view(self.app.end(to_id(actor_id), to_id(call_id, "call.not_found")))

    # -- breakout rooms (CA-5) ----------------------------------------------------------------------------------
    @rpc
    def open_breakouts(self, actor_id: str, call_id: str, request: dict) -> dict:
        return call_view(self.app.open_breakouts(to_id(actor_id), schemas.BreakoutsInput().load_command(
            request, call_id=to_id(call_id, "call.not_found"))))

    @rpc
    def move(self, actor_id: str, call_id: str, request: dict) -> dict:
        return call_view(self.app.move(to_id(actor_id), schemas.MoveInput().load_command(
            request, call_id=to_id(call_id, "call.not_found"))))

    @rpc
    def close_breakouts(self, actor_id: str, call_id: str) -> dict:
        return call_view(self.app.close_breakouts(to_id(actor_id), to_id(call_id, "call.not_found")))

    # -- recording (CA-6) -------------------------------------------------------------------------------------------
    @rpc
    def start_recording(self, actor_id: str, call_id: str) -> dict:
        return call_view(self.app.start_recording(to_id(actor_id), to_id(call_id, "call.not_found")))

    @rpc
    def stop_recording(self, actor_id: str, call_id: str) -> dict:
        return call_view(self.app.stop_recording(to_id(actor_id), to_id(call_id, "call.not_found")))

    # -- the whiteboard (CA-3, beta) ------------------------------------------------------------------------------
    @rpc
    def whiteboard(self, actor_id: str, call_id: str) -> dict:
        board = self.app.whiteboard(to_id(actor_id), to_id(call_id, "call.not_found"))
        return schemas.WhiteboardView().dump({
            "call_id": board.call_id, "revision": board.revision, "strokes": board.strokes,
            "width": schemas.BOARD_WIDTH, "height": schemas.BOARD_HEIGHT,
            "max_strokes": schemas.BOARD_MAX_STROKES, "max_points": schemas.BOARD_MAX_POINTS})

    @rpc
    def draw(self, actor_id: str, call_id: str, stroke: dict) -> dict:
        return schemas.WhiteboardChangeView().dump(self.app.draw(to_id(actor_id), schemas.StrokeInput().load_command(
            stroke, call_id=to_id(call_id, "call.not_found"))))

    @rpc
    def undo_stroke(self, actor_id: str, call_id: str) -> dict:
        return schemas.WhiteboardChangeView().dump(self.app.undo(to_id(actor_id), to_id(call_id, "call.not_found")))

    @rpc
    def erase_stroke(self, actor_id: str, call_id: str, stroke_id: str) -> dict:
        return schemas.WhiteboardChangeView().dump(self.app.erase(
            to_id(actor_id), to_id(call_id, "call.not_found"), str(to_id(stroke_id, "call.no_such_stroke"))))

    @rpc
    def clear_whiteboard(self, actor_id: str, call_id: str) -> dict:
        return schemas.WhiteboardChangeView().dump(self.app.clear(to_id(actor_id), to_id(call_id, "call.not_found")))

    @rpc
    def board_audience(self, call_id: str) -> dict:
        """The gateway's question before it pushes a board's change: who is in the call now (CA-3)."""
        return {"members": self.app.board_audience(to_id(call_id, "call.not_found")), "concealed": []}

    # -- the SFU's nodes (issue #17) -------------------------------------------------------------------------------
    # A heartbeat is heard by every calls process on a queue of its own (nothing stored: liveness is a moment's);
    # the node a call is on is stored on the call. Why not the outbox or an RPC: the SFU has no store, and an RPC
    # or a shared queue reaches one replica of calls while each must know the live nodes.
    @event_handler("sfu", get_contract("sfu.NodeHeartbeat.v1").routing_key, handler_type=BROADCAST,
                   reliable_delivery=False)
    def on_node_heartbeat(self, body) -> None:
        handlers.on_node_heartbeat(self.nodes, parse_event(body))

    @timer(interval=1)
    def check_sfu_nodes(self) -> int:
        """A node silent for SFERA_SFU_NODE_TIMEOUT seconds is dead: its calls' participants are gone."""
        return handlers.lose_dead_nodes(self.app, self.nodes)

    # -- the SFU's facts ------------------------------------------------------------------------------------------
    @consume_event("sfu.ParticipantConnected.v1")
    def on_connected(self, event: CloudEvent) -> bool:
        return handlers.on_participant_connected(self.app, event)

    @consume_event("sfu.ParticipantDisconnected.v1")
    def on_disconnected(self, event: CloudEvent) -> bool:
        return handlers.on_participant_disconnected(self.app, event)

    @consume_event("sfu.RecordingWritten.v1")
    def on_recording_written(self, event: CloudEvent) -> bool:
        return handlers.on_recording_written(self.app, event)

    # -- the e-journal's remote lessons (CA-2, CA-7, EJ-5) -----------------------------------------------------------
    @consume_event("ejournal_bridge.LessonPublished.v1")
    def on_lesson_published(self, event: CloudEvent) -> bool:
        return handlers.on_lesson(self.app, event)

    @consume_event("ejournal_bridge.LessonRescheduled.v1")
    def on_lesson_rescheduled(self, event: CloudEvent) -> bool:
        return handlers.on_lesson(self.app, event)

    @consume_event("ejournal_bridge.LessonCancelled.v1")
    def on_lesson_cancelled(self, event: CloudEvent) -> bool:
        return handlers.on_lesson(self.app, event)

    @consume_event("ejournal_bridge.LessonStartRequested.v1")
    def on_lesson_start_requested(self, event: CloudEvent) -> bool:
        return handlers.on_lesson_start_requested(self.app, event, self._lesson_chat)

    @consume_event("ejournal_bridge.LessonEndRequested.v1")
    def on_lesson_end_requested(self, event: CloudEvent) -> bool:
        return handlers.on_lesson_end_requested(self.app, event)
