"""The public API v1 for calls, lessons and broadcasts (CA-*). Routes only; calls
decides who may start, join and control what. Media goes to the SFU with the
join token this API hands out (CA-10)."""

from __future__ import annotations

import uuid

from gateway.api import api, call, me
from gateway.endpoint import endpoint
from shared.contracts.api import calls

CALL_ERRORS = ("call.not_found", "call.ended")
ADMIN_ERRORS = (*CALL_ERRORS, "call.admin_only", "call.not_a_participant")


@api.post("/calls")
@endpoint(summary="Start a call from a chat, everyone or chosen members, or a broadcast (CA-2, CA-9)", tag="calls",
          body=calls.StartCallInput, response=calls.CallView, status=201,
          errors=("chat.not_found", "chat.members_only", "call.not_in_chat", "call.broadcast_forbidden",
                  "call.too_many_presenters", "call.broadcast_needs_school", "call.subject_busy",
                  "direct.no_shared_chat", "direct.students_not_allowed", "call.not_in_inbox"))
def start_call(body: dict):
    return call("calls", "start_call", actor_id=me(), request=calls.StartCallInput().dump(body))


@api.post("/lessons/<uuid:lesson_id>/call")
@endpoint(summary="The teacher starts a published remote lesson's call (CA-2, CA-8)", tag="calls",
          response=calls.CallView, status=201,
          errors=("lesson.not_found", "call.lesson_teacher_only", "call.subject_busy", "lesson.teacher_not_linked",
                  "lesson.class_not_linked"))
def start_lesson_call(lesson_id: uuid.UUID):
    return call("calls", "start_lesson", actor_id=me(), lesson_id=str(lesson_id))


@api.get("/lessons/<uuid:lesson_id>/call")
@endpoint(summary="A lesson's running call, for the diary's join button (EJ-5, CA-10)", tag="calls",
          response=calls.CallView, errors=("lesson.not_found", "call.not_started", "call.not_found", "call.removed"))
def lesson_call(lesson_id: uuid.UUID):
    return call("calls", "lesson_call", actor_id=me(), lesson_id=str(lesson_id))


@api.get("/calls/<uuid:call_id>")
@endpoint(summary="A call with its participants, hands, rooms and recordings (CA-3)", tag="calls",
          response=calls.CallView, errors=("call.not_found", "call.removed"))
def get_call(call_id: uuid.UUID):
    return call("calls", "get_call", actor_id=me(), call_id=str(call_id))


@api.post("/calls/<uuid:call_id>/join")
@endpoint(summary="Join: a short-lived token for the SFU's signaling socket (CA-1, CA-10)", tag="calls",
          response=calls.JoinView, errors=(*CALL_ERRORS, "call.not_invited", "call.full", "call.removed",
                                           "direct.no_shared_chat", "direct.students_not_allowed"))
def join_call(call_id: uuid.UUID):
    return call("calls", "join", actor_id=me(), call_id=str(call_id))


@api.post("/calls/<uuid:call_id>/leave")
@endpoint(summary="Leave the call", tag="calls", response=calls.CallView, errors=CALL_ERRORS)
def leave_call(call_id: uuid.UUID):
    return call("calls", "leave", actor_id=me(), call_id=str(call_id))


@api.put("/calls/<uuid:call_id>/hand")
@endpoint(summary="Raise or lower one's hand (CA-3)", tag="calls", body=calls.HandInput, response=calls.CallView,
          errors=(*CALL_ERRORS, "call.not_a_participant"))
def raise_hand(call_id: uuid.UUID, body: dict):
    return call("calls", "raise_hand", actor_id=me(), call_id=str(call_id), raised=body["raised"])


@api.delete("/calls/<uuid:call_id>/participants/<uuid:user_id>/hand")
@endpoint(summary="The admin lowers someone's hand (CA-3)", tag="calls", response=calls.CallView,
          errors=ADMIN_ERRORS)
def lower_hand(call_id: uuid.UUID, user_id: uuid.UUID):
    return call("calls", "lower_hand_of", actor_id=me(), call_id=str(call_id), user_id=str(user_id))


@api.post("/calls/<uuid:call_id>/participants/<uuid:user_id>/mute")
@endpoint(summary="The admin mutes someone's microphone (CA-3)", tag="calls", response=calls.CallView,
          errors=ADMIN_ERRORS)
def mute(call_id: uuid.UUID, user_id: uuid.UUID):
    return call("calls", "mute", actor_id=me(), call_id=str(call_id), user_id=str(user_id))


@api.delete("/calls/<uuid:call_id>/mute")
@endpoint(summary="Unmute oneself after the admin muted you", tag="calls", response=calls.CallView,
          errors=(*CALL_ERRORS, "call.not_a_participant"))
def unmute(call_id: uuid.UUID):
    return call("calls", "unmute_self", actor_id=me(), call_id=str(call_id))


@api.delete("/calls/<uuid:call_id>/participants/<uuid:user_id>")
@endpoint(summary="The admin removes someone from the call (CA-3)", tag="calls", response=calls.CallView,
          errors=(*ADMIN_ERRORS, "call.cannot_remove_admin"))
def remove_participant(call_id: uuid.UUID, user_id: uuid.UUID):
    return call("calls", "remove", actor_id=me(), call_id=str(call_id), user_id=str(user_id))


@api.put("/calls/<uuid:call_id>/permissions")
@endpoint(summary="Participant access: may participants share their screen (CA-4)", tag="calls",
          body=calls.PermissionsInput, response=calls.CallView, errors=ADMIN_ERRORS)
def set_permissions(call_id: uuid.UUID, body: dict):
    return call("calls", "set_permissions", actor_id=me(), call_id=str(call_id), permissions=body)


@api.post("/calls/<uuid:call_id>/end")
@endpoint(summary="End the call for everyone (CA-7)", tag="calls", response=calls.CallView, errors=ADMIN_ERRORS)
def end_call(call_id: uuid.UUID):
    return call("calls", "end", actor_id=me(), call_id=str(call_id))


@api.post("/calls/<uuid:call_id>/breakouts")
@endpoint(summary="Open breakout rooms (up to 50), by hand and at random (CA-5)", tag="calls",
          body=calls.BreakoutsInput, response=calls.CallView,
          errors=(*ADMIN_ERRORS, "call.breakouts_count", "call.no_such_room", "call.breakouts_open"))
def open_breakouts(call_id: uuid.UUID, body: dict):
    return call("calls", "open_breakouts", actor_id=me(), call_id=str(call_id),
                request=calls.BreakoutsInput().dump(body))


@api.post("/calls/<uuid:call_id>/breakouts/moves")
@endpoint(summary="Move someone to a breakout room or back to main while running (CA-5)", tag="calls",
          body=calls.MoveInput, response=calls.CallView, errors=(*ADMIN_ERRORS, "call.no_such_room"))
def move_participant(call_id: uuid.UUID, body: dict):
    return call("calls", "move", actor_id=me(), call_id=str(call_id), request=calls.MoveInput().dump(body))


@api.delete("/calls/<uuid:call_id>/breakouts")
@endpoint(summary="Call everyone back to the main room (CA-5)", tag="calls", response=calls.CallView,
          errors=ADMIN_ERRORS)
def close_breakouts(call_id: uuid.UUID):
    return call("calls", "close_breakouts", actor_id=me(), call_id=str(call_id))


@api.post("/calls/<uuid:call_id>/recording")
@endpoint(summary="Start recording; the file lands in the call's chat (CA-6)", tag="calls",
          response=calls.CallView, errors=(*ADMIN_ERRORS, "call.no_chat", "call.recording_chosen_members"))
def start_recording(call_id: uuid.UUID):
    return call("calls", "start_recording", actor_id=me(), call_id=str(call_id))


@api.delete("/calls/<uuid:call_id>/recording")
@endpoint(summary="Stop recording (CA-6)", tag="calls", response=calls.CallView, errors=ADMIN_ERRORS)
def stop_recording(call_id: uuid.UUID):
    return call("calls", "stop_recording", actor_id=me(), call_id=str(call_id))



# -- the whiteboard (CA-3, beta): changes travel through calls' outbox and the realtime socket -------------------
BOARD_ERRORS = (*CALL_ERRORS, "call.whiteboard_participants_only")


@api.get("/calls/<uuid:call_id>/whiteboard")
@endpoint(summary="The call's whiteboard as it is now, with its revision (CA-3): a late joiner draws it, then "
                  "applies the WhiteboardChanged events the realtime socket pushes after that revision", tag="calls",
          response=calls.WhiteboardView, errors=BOARD_ERRORS)
def whiteboard(call_id: uuid.UUID):
    return call("calls", "whiteboard", actor_id=me(), call_id=str(call_id))


@api.post("/calls/<uuid:call_id>/whiteboard/strokes")
@endpoint(summary="Draw a stroke on the call's whiteboard (CA-3); a broadcast's viewers only look", tag="calls",
          body=calls.StrokeInput, response=calls.WhiteboardChangeView, status=201,
          errors=(*BOARD_ERRORS, "call.whiteboard_view_only", "call.whiteboard_full", "call.whiteboard_stroke_exists"))
def draw(call_id: uuid.UUID, body: dict):
    return call("calls", "draw", actor_id=me(), call_id=str(call_id), stroke=calls.StrokeInput().dump(body))


@api.post("/calls/<uuid:call_id>/whiteboard/undo")
@endpoint(summary="Take one's own latest stroke off the whiteboard (CA-3)", tag="calls",
          response=calls.WhiteboardChangeView, errors=(*BOARD_ERRORS, "call.whiteboard_nothing_to_undo"))
def undo_stroke(call_id: uuid.UUID):
    return call("calls", "undo_stroke", actor_id=me(), call_id=str(call_id))


@api.delete("/calls/<uuid:call_id>/whiteboard/strokes/<uuid:stroke_id>")
@endpoint(summary="The eraser: the admin takes any stroke off the whiteboard, others their own (CA-3)", tag="calls",
          response=calls.WhiteboardChangeView, errors=(*BOARD_ERRORS, "call.admin_only", "call.no_such_stroke"))
def erase_stroke(call_id: uuid.UUID, stroke_id: uuid.UUID):
    return call("calls", "erase_stroke", actor_id=me(), call_id=str(call_id), stroke_id=str(stroke_id))


@api.delete("/calls/<uuid:call_id>/whiteboard")
@endpoint(summary="The admin clears the whiteboard (CA-3)", tag="calls", response=calls.WhiteboardChangeView,
          errors=(*BOARD_ERRORS, "call.admin_only"))
def clear_whiteboard(call_id: uuid.UUID):
    return call("calls", "clear_whiteboard", actor_id=me(), call_id=str(call_id))
