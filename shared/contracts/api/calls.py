"""calls's RPC contract: payloads and results of its entrypoints (CA-*), as marshmallow schemas.
The service validates with them and the gateway documents and validates its requests with the same ones.
A body the service loads is a ``CommandSchema``: the service builds its typed command (a frozen dataclass named
as a verb, the body's fields plus the ids of the request's path) and the application method takes that."""

import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from marshmallow import Schema, ValidationError, fields, validate

from shared.contracts.api.commands import CommandSchema

MAX_BREAKOUTS = 50  # CA-5
MAX_PRESENTERS = 5  # CA-9


@dataclass(frozen=True)
class StartCall:
    """CA-2, CA-9: a call from a chat, to everyone in it or to chosen members, or a broadcast with presenters."""

    chat_id: uuid.UUID
    kind: str = "call"
    title: str | None = None
    invited_user_ids: tuple[uuid.UUID, ...] | None = None
    presenter_ids: tuple[uuid.UUID, ...] = ()

    def __post_init__(self) -> None:  # the body's lists, kept unchangeable
        if self.invited_user_ids is not None:
            object.__setattr__(self, "invited_user_ids", tuple(self.invited_user_ids))
        object.__setattr__(self, "presenter_ids", tuple(self.presenter_ids))


class StartCallInput(CommandSchema):
    command = StartCall
    chat_id = fields.UUID(required=True, metadata={"description": "The chat the call starts from (CA-2)"})
    kind = fields.String(load_default="call", validate=validate.OneOf(["call", "broadcast"]),
                         metadata={"description": "call, or broadcast from a school's chat (CA-9)"})
    title = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))
    invited_user_ids = fields.List(fields.UUID(), load_default=None, allow_none=True,
                                   metadata={"description": "Chosen members; empty or absent: everyone"})
    presenter_ids = fields.List(fields.UUID(), load_default=list, validate=validate.Length(max=MAX_PRESENTERS - 1),
                                metadata={"description": "Broadcasts: who presents besides the starter"})


class ParticipantView(Schema):
    user_id = fields.UUID(required=True)
    role = fields.String(required=True, metadata={"description": "admin, presenter, participant or viewer"})
    connected = fields.Boolean(required=True)
    hand_raised = fields.Boolean(required=True)
    muted = fields.Boolean(required=True)
    room = fields.String(required=True, metadata={"description": "main or a breakout room id"})
    sfu_room = fields.String(required=True)


class RecordingView(Schema):
    """A recording as participants see it; the file itself is an attachment in the call's chat
    (CA-6), read through that reference only: its blob key is never shown (issue #12)."""

    recording_id = fields.String(required=True)
    size = fields.Integer(required=True)
    media_type = fields.String(required=True)
    duration = fields.Float(required=True)
    file_name = fields.String(required=True)


class CallView(Schema):
    call_id = fields.UUID(required=True)
    kind = fields.String(required=True)
    title = fields.String(required=True)
    started_by = fields.UUID(required=True, metadata={"description": "The call's admin (CA-2)"})
    organization_id = fields.UUID(allow_none=True)
    chat_id = fields.UUID(allow_none=True, metadata={"description": "The in-call chat (CA-3)"})
    lesson_id = fields.UUID(allow_none=True)
    class_id = fields.UUID(allow_none=True)
    subject = fields.String(allow_none=True)
    invited_user_ids = fields.List(fields.UUID(), allow_none=True)
    presenter_ids = fields.List(fields.UUID())
    screen_share_allowed = fields.Boolean(required=True, metadata={"description": "CA-4"})
    breakout_rooms = fields.Dict(keys=fields.String(), values=fields.String())
    recording = fields.Boolean(required=True)
    recordings = fields.List(fields.Nested(RecordingView))
    participants = fields.List(fields.Nested(ParticipantView))
    max_participants = fields.Integer(required=True)
    started_at = fields.String(allow_none=True)
    ended_at = fields.String(allow_none=True)
    ended_reason = fields.String(allow_none=True)


class IceServerView(Schema):
    urls = fields.List(fields.String(), required=True, metadata={"description": "stun:, turn: or turns: URLs"})
    username = fields.String(metadata={"description": "TURN only (time-limited with the TURN REST API)"})
    credential = fields.String(metadata={"description": "TURN only"})


class JoinView(Schema):
    call = fields.Nested(CallView, required=True)
    token = fields.String(required=True, metadata={"description": "Join token for the SFU (short-lived)"})
    expires_in = fields.Integer(required=True)
    sfu_url = fields.String(required=True, metadata={"description": "The SFU's signaling WebSocket"})
    room = fields.String(required=True)
    rights = fields.List(fields.String(), required=True)
    ice_servers = fields.List(fields.Nested(IceServerView), required=True, metadata={
        "description": "RTCIceServer entries for the peer connection (SFERA_SFU_ICE_SERVERS; TURN credentials)"})


class HandInput(Schema):
    raised = fields.Boolean(required=True)


@dataclass(frozen=True)
class SetPermissions:
    """CA-4: the admin allows or forbids the participants' screen sharing."""

    call_id: uuid.UUID
    screen_share: bool


class PermissionsInput(CommandSchema):
    command = SetPermissions
    screen_share = fields.Boolean(required=True, metadata={"description": "Participants may share the screen (CA-4)"})


@dataclass(frozen=True)
class OpenBreakouts:
    """CA-5: the admin splits the call into ``count`` rooms; ``assignment`` places some people by hand."""

    call_id: uuid.UUID
    count: int
    assignment: Mapping[uuid.UUID, int] | None = None


class BreakoutsInput(CommandSchema):
    command = OpenBreakouts
    count = fields.Integer(required=True, validate=validate.Range(min=1, max=MAX_BREAKOUTS))
    assignment = fields.Dict(keys=fields.UUID(), values=fields.Integer(validate=validate.Range(min=1)),
                             load_default=None, allow_none=True,
                             metadata={"description": "By hand: user id -> room number; the rest at random"})


@dataclass(frozen=True)
class MoveParticipant:
    """CA-5: the admin moves a participant to the main room or a breakout room."""

    call_id: uuid.UUID
    user_id: uuid.UUID
    room: str


class MoveInput(CommandSchema):
    command = MoveParticipant
    user_id = fields.UUID(required=True)
    room = fields.String(required=True, metadata={"description": "main or room-<n>"})


# -- the whiteboard (CA-3, beta) ------------------------------------------------------------------------------
# A board is a 1600×900 drawing (the client scales it to its canvas); every limit keeps one call's board small
# enough to send whole to a late joiner and to keep in one aggregate's snapshot.
BOARD_WIDTH, BOARD_HEIGHT = 1600, 900
PEN_COLORS = ("#1f2937", "#dc2626", "#2563eb", "#15803d", "#c2410c")  # dark, red, blue, green, orange
PEN_WIDTHS = (2, 4, 8, 16)
STROKE_MAX_POINTS = 1000
BOARD_MAX_STROKES = 500
BOARD_MAX_POINTS = 20_000


def _even_points(points: list[int]) -> None:
    if len(points) % 2:
        raise ValidationError("Points are x, y pairs: an even count.")
    if any(not 0 <= x <= BOARD_WIDTH for x in points[0::2]) or any(not 0 <= y <= BOARD_HEIGHT for y in points[1::2]):
        raise ValidationError(f"Points lie on the board: x 0..{BOARD_WIDTH}, y 0..{BOARD_HEIGHT}.")


@dataclass(frozen=True)
class DrawStroke:
    """CA-3: a stroke on the call's whiteboard; its id is the client's, so drawing it again changes nothing."""

    call_id: uuid.UUID
    stroke_id: uuid.UUID
    color: str
    width: int
    points: tuple[int, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "points", tuple(self.points))


class _Stroke(Schema):
    stroke_id = fields.UUID(required=True, metadata={
        "description": "Chosen by the client: drawing the same stroke again changes nothing (a retry is safe)"})
    color = fields.String(required=True, validate=validate.OneOf(PEN_COLORS))
    width = fields.Integer(required=True, validate=validate.OneOf(PEN_WIDTHS))
    points = fields.List(fields.Integer(strict=True), required=True,
                         validate=[validate.Length(min=2, max=2 * STROKE_MAX_POINTS), _even_points],
                         metadata={"description": f"x0, y0, x1, y1, … on a {BOARD_WIDTH}×{BOARD_HEIGHT} board, "
                                                  f"at most {STROKE_MAX_POINTS} points"})


class StrokeInput(_Stroke, CommandSchema):
    command = DrawStroke


class StrokeView(_Stroke):
    user_id = fields.UUID(required=True, metadata={"description": "Who drew it"})


class WhiteboardView(Schema):
    call_id = fields.UUID(required=True)
    revision = fields.Integer(required=True, metadata={
        "description": "How many changes the board has had; pushed changes carry the next ones"})
    width = fields.Integer(required=True)
    height = fields.Integer(required=True)
    strokes = fields.List(fields.Nested(StrokeView), required=True, metadata={"description": "Oldest first"})
    max_strokes = fields.Integer(required=True)
    max_points = fields.Integer(required=True)


class WhiteboardChangeView(Schema):
    """One change of the board: what a command answers and what the realtime socket pushes
    (``WhiteboardChanged``) to the people in the call."""

    call_id = fields.UUID(required=True)
    action = fields.String(required=True, metadata={"description": "drawn, erased or cleared"})
    revision = fields.Integer(required=True)
    by = fields.UUID(required=True)
    stroke = fields.Nested(StrokeView, allow_none=True)
    stroke_id = fields.String(allow_none=True)
