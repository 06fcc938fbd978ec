"""Which of calls's domain events become integration events (mapping only).

The SFU listens to the control events (muted, removed, moved, permissions,
recording, ended): they are its commands, delivered through the outbox like
every other event, so a command the calls service accepted is never lost.
"""

from __future__ import annotations

from collections.abc import Iterable

from calls.domain import MAX_PARTICIPANTS, Call, Whiteboard, room_id

Published = tuple[str, dict, str | None]


def to_integration_events(e: object) -> Iterable[Published]:
    if isinstance(e, Whiteboard.Event):
        yield from whiteboard_events(e)
    if not isinstance(e, Call.Event):
        return
    call_id = e.originator_id
    subject = str(call_id)
    at = e.timestamp
    if isinstance(e, Call.Started):
        yield "calls.CallStarted.v1", {
            "call_id": call_id, "kind": e.kind, "started_by": e.started_by, "title": e.title,
            "organization_id": e.organization_id, "chat_id": e.chat_id, "lesson_id": e.lesson_id,
            "class_id": e.class_id, "subject": e.subject, "invited_user_ids": e.invited or [],
            "presenter_ids": e.presenters or [], "max_participants": MAX_PARTICIPANTS,
            "started_at": e.started_at or at}, subject
    elif isinstance(e, Call.ParticipantAdmitted):
        yield "calls.ParticipantAdmitted.v1", {"call_id": call_id, "user_id": e.user_id, "role": e.role,
                                               "admitted_at": at}, subject
    elif isinstance(e, Call.ParticipantJoined):
        yield "calls.ParticipantJoined.v1", {"call_id": call_id, "user_id": e.user_id, "joined_at": e.at}, subject
    elif isinstance(e, Call.ParticipantLeft):
        yield "calls.ParticipantLeft.v1", {"call_id": call_id, "user_id": e.user_id, "reason": e.reason,
                                           "left_at": at}, subject
    elif isinstance(e, Call.HandRaised):
        yield "calls.HandRaised.v1", {"call_id": call_id, "user_id": e.user_id, "raised": e.raised,
                                      "changed_at": at}, subject
    elif isinstance(e, Call.ParticipantMuted):
        yield "calls.ParticipantMuted.v1", {"call_id": call_id, "user_id": e.user_id, "muted": True,
                                            "changed_at": at}, subject
    elif isinstance(e, Call.ParticipantUnmuted):
        yield "calls.ParticipantMuted.v1", {"call_id": call_id, "user_id": e.user_id, "muted": False,
                                            "changed_at": at}, subject
    elif isinstance(e, Call.PermissionsChanged):
        yield "calls.PermissionsChanged.v1", {"call_id": call_id, "screen_share": e.screen_share,
                                              "changed_at": at}, subject
    elif isinstance(e, Call.BreakoutsOpened):
        yield "calls.BreakoutsChanged.v1", {
            "call_id": call_id, "rooms": e.rooms,
            "placement": {uid: room_id(call_id, room) for uid, room in e.assignment.items()},
            "changed_at": at}, subject
    elif isinstance(e, Call.ParticipantMoved):
        yield "calls.BreakoutsChanged.v1", {"call_id": call_id, "rooms": None,
                                            "placement": {e.user_id: room_id(call_id, e.room)},
                                            "changed_at": at}, subject
    elif isinstance(e, Call.BreakoutsClosed):
        yield "calls.BreakoutsChanged.v1", {"call_id": call_id, "rooms": {}, "placement": None, "closed": True,
                                            "changed_at": at}, subject
    elif isinstance(e, Call.RecordingStarted):
        yield "calls.RecordingChanged.v1", {"call_id": call_id, "recording_id": e.recording_id,
                                            "recording": True, "changed_at": at}, subject
    elif isinstance(e, Call.RecordingStopped):
        yield "calls.RecordingChanged.v1", {"call_id": call_id, "recording_id": e.recording_id,
                                            "recording": False, "changed_at": at}, subject
    elif isinstance(e, Call.RecordingReady):
        yield "calls.RecordingReady.v1", {
            "call_id": call_id, "recording_id": e.recording_id, "blob_key": e.blob_key, "size": e.size,
            "media_type": e.media_type, "duration": e.duration, "file_name": e.file_name, "chat_id": e.chat_id,
            "admin_id": e.admin_id}, subject
    elif isinstance(e, Call.Ended):
        yield "calls.CallEnded.v1", {"call_id": call_id, "ended_by": e.by, "reason": e.reason,
                                     "ended_at": e.at}, subject


def whiteboard_events(e: Whiteboard.Event) -> Iterable[Published]:
    """CA-3: each change of a call's board, numbered (``revision``) so that a client sees when it missed one."""
    change = {"call_id": e.call_id, "revision": e.originator_version - 1, "changed_at": e.timestamp}
    if isinstance(e, Whiteboard.Drawn):
        stroke = e.stroke
        yield "calls.WhiteboardChanged.v1", {"action": "drawn", "by": stroke["user_id"],
                                             "stroke": stroke, "stroke_id": stroke["stroke_id"], **change}, e.call_id
    elif isinstance(e, Whiteboard.Erased):
        yield "calls.WhiteboardChanged.v1", {"action": "erased", "by": e.by,
                                             "stroke_id": e.stroke_id, **change}, e.call_id
    elif isinstance(e, Whiteboard.Cleared):
        yield "calls.WhiteboardChanged.v1", {"action": "cleared", "by": e.by, **change}, e.call_id
