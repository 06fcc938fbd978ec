"""Events published by calls and by its SFU (docs/rules.md: CA-*).

``calls.*`` events come from the calls service's outbox; the control events
among them (muted, permissions, breakouts, recording, ended, left with reason
``removed``) are also the SFU's commands. ``sfu.*`` events are the SFU's media
facts, consumed by calls.
"""

from marshmallow import fields, validate

from shared.contracts.envelope import DataSchema, contract

CALL_KINDS = ("call", "lesson", "broadcast")


@contract("calls", "CallStarted", 1)
class CallStartedV1(DataSchema):
    """A call, lesson or broadcast is under way (CA-1, CA-2, CA-9).

    ``started_by`` is the call's admin (CA-2). ``invited_user_ids`` is empty when
    the whole chat is called. ``lesson_id``/``class_id``/``subject`` are set for
    lessons (CA-8 keys on them); ``max_participants`` is 100 (CA-1).
    """

    call_id = fields.UUID(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(CALL_KINDS))
    started_by = fields.UUID(required=True)
    title = fields.String(load_default=None, allow_none=True)
    organization_id = fields.UUID(load_default=None, allow_none=True)
    chat_id = fields.UUID(load_default=None, allow_none=True)
    lesson_id = fields.UUID(load_default=None, allow_none=True)
    class_id = fields.UUID(load_default=None, allow_none=True)
    subject = fields.String(load_default=None, allow_none=True)
    invited_user_ids = fields.List(fields.UUID(), load_default=list)
    presenter_ids = fields.List(fields.UUID(), load_default=list)
    max_participants = fields.Integer(load_default=100, validate=validate.Range(min=2, max=100))
    sfu_node = fields.String(load_default=None, allow_none=True)
    started_at = fields.AwareDateTime(required=True)


class _OfParticipant(DataSchema):
    """What happened to one person in one call."""

    call_id = fields.UUID(required=True)
    user_id = fields.UUID(required=True)


@contract("calls", "ParticipantAdmitted", 1)
class ParticipantAdmittedV1(_OfParticipant):
    """Someone was let into the call and given a join token (CA-10); their media connection follows
    (``ParticipantJoined``). From now on they are among the people in the call (its whiteboard's audience)."""

    role = fields.String(required=True)
    admitted_at = fields.AwareDateTime(required=True)


@contract("calls", "ParticipantJoined", 1)
class ParticipantJoinedV1(_OfParticipant):
    """Someone's media connection to the call is up (CA-1, CA-10)."""

    joined_at = fields.AwareDateTime(required=True)


@contract("calls", "ParticipantLeft", 1)
class ParticipantLeftV1(_OfParticipant):
    """Someone left: ``left``, ``disconnected``, or ``removed`` by the admin (CA-3): the SFU drops them."""

    reason = fields.String(required=True)
    left_at = fields.AwareDateTime(required=True)


@contract("calls", "HandRaised", 1)
class HandRaisedV1(_OfParticipant):
    """A hand went up (``raised``) or down (CA-3)."""

    raised = fields.Boolean(required=True)
    changed_at = fields.AwareDateTime(required=True)


@contract("calls", "ParticipantMuted", 1)
class ParticipantMutedV1(_OfParticipant):
    """The admin muted someone (the SFU stops forwarding their microphone) or they unmuted (CA-3)."""

    muted = fields.Boolean(required=True)
    changed_at = fields.AwareDateTime(required=True)


@contract("calls", "PermissionsChanged", 1)
class PermissionsChangedV1(DataSchema):
    """CA-4: whether participants may share their screen."""

    call_id = fields.UUID(required=True)
    screen_share = fields.Boolean(required=True)
    changed_at = fields.AwareDateTime(required=True)


@contract("calls", "BreakoutsChanged", 1)
class BreakoutsChangedV1(DataSchema):
    """CA-5: rooms opened (``rooms``), people placed (``placement``: user id -> SFU room), or all called back."""

    call_id = fields.UUID(required=True)
    rooms = fields.Dict(keys=fields.String(), values=fields.String(), load_default=None, allow_none=True)
    placement = fields.Dict(keys=fields.String(), values=fields.String(), load_default=None, allow_none=True)
    closed = fields.Boolean(load_default=False)
    changed_at = fields.AwareDateTime(required=True)


@contract("calls", "RecordingChanged", 1)
class RecordingChangedV1(DataSchema):
    """CA-6: the admin started or stopped recording; the SFU writes the forwarded media to a file."""

    call_id = fields.UUID(required=True)
    recording_id = fields.String(required=True)
    recording = fields.Boolean(required=True)
    changed_at = fields.AwareDateTime(required=True)


@contract("calls", "RecordingReady", 1)
class RecordingReadyV1(DataSchema):
    """CA-6: a recording is stored (``blob_key`` in the blob store); messaging posts it into ``chat_id``."""

    call_id = fields.UUID(required=True)
    recording_id = fields.String(required=True)
    blob_key = fields.String(required=True)
    size = fields.Integer(required=True)
    media_type = fields.String(required=True)
    duration = fields.Float(required=True)
    file_name = fields.String(required=True)
    chat_id = fields.UUID(load_default=None, allow_none=True)
    admin_id = fields.UUID(required=True)


@contract("calls", "CallEnded", 1)
class CallEndedV1(DataSchema):
    """CA-7: the call ended for everyone (``ended_by`` None: ended from the e-journal)."""

    call_id = fields.UUID(required=True)
    ended_by = fields.UUID(load_default=None, allow_none=True)
    reason = fields.String(required=True)
    ended_at = fields.AwareDateTime(required=True)


@contract("calls", "WhiteboardChanged", 1)
class WhiteboardChangedV1(DataSchema):
    """CA-3: the call's whiteboard changed: a stroke ``drawn`` (``stroke``), one ``erased`` (``stroke_id``: undone
    by its author or erased by the admin) or the board ``cleared`` by the admin. ``revision`` counts the board's
    changes from 1: a client that sees one skipped reads the board again. The gateway pushes it to the people
    in the call."""

    call_id = fields.UUID(required=True)
    action = fields.String(required=True, validate=validate.OneOf(("drawn", "erased", "cleared")))
    revision = fields.Integer(required=True, validate=validate.Range(min=1))
    by = fields.UUID(required=True)
    stroke = fields.Dict(load_default=None, allow_none=True)
    stroke_id = fields.String(load_default=None, allow_none=True)
    changed_at = fields.AwareDateTime(required=True)


# -- the SFU's media facts -------------------------------------------------------------------------------
@contract("sfu", "ParticipantConnected", 1)
class ParticipantConnectedV1(_OfParticipant):
    """A participant's WebRTC connection is up on an SFU node."""

    room = fields.String(required=True)
    node = fields.String(required=True)


@contract("sfu", "ParticipantDisconnected", 1)
class ParticipantDisconnectedV1(ParticipantConnectedV1):
    """A participant's connection closed (left, network gone, or dropped by a command)."""

    reason = fields.String(load_default="disconnected")


@contract("sfu", "TrackPublished", 1)
class TrackPublishedV1(ParticipantConnectedV1):
    """A participant started sending a track: ``source`` microphone, camera or screen."""

    source = fields.String(required=True)
    kind = fields.String(required=True)


@contract("sfu", "NodeHeartbeat", 1)
class NodeHeartbeatV1(DataSchema):
    """An SFU node is alive (every ``interval`` seconds): where clients reach it and what it carries. Every calls
    replica hears it on a queue of its own (a broadcast: liveness is not stored); a node silent for
    ``SFERA_SFU_NODE_TIMEOUT`` seconds is dead and its participants are gone."""

    node = fields.String(required=True)
    url = fields.String(required=True, metadata={"description": "The node's public signaling socket"})
    calls = fields.List(fields.UUID(), load_default=list, metadata={"description": "The calls it has people of"})
    rooms = fields.Integer(load_default=0)
    participants = fields.Integer(load_default=0)
    interval = fields.Float(load_default=2.0)
    boot = fields.String(load_default=None, allow_none=True, metadata={
        "description": "Changes when the node starts again: what it carried before is gone"})


@contract("sfu", "RecordingWritten", 1)
class RecordingWrittenV1(DataSchema):
    """CA-6: the SFU finished a recording file and stored it."""

    call_id = fields.UUID(required=True)
    recording_id = fields.String(required=True)
    blob_key = fields.String(required=True)
    size = fields.Integer(required=True)
    media_type = fields.String(required=True)
    duration = fields.Float(required=True)
    file_name = fields.String(required=True)
