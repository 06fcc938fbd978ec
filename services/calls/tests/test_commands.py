"""Examples of calls's typed commands at its RPC edge (issue #16): particular bodies load into their frozen
commands. That every body an entrypoint loads becomes its command is checked for every service at once in
shared/tests/test_edge_commands.py."""

from __future__ import annotations

import dataclasses
import uuid

import marshmallow
import pytest

from shared.contracts.api import calls as schemas

pytestmark = pytest.mark.unit


def test_a_broadcast_and_a_stroke_load_as_unchangeable_commands_CA_9_CA_3():
    chat, presenter = uuid.uuid4(), uuid.uuid4()
    start = schemas.StartCallInput().load_command({"chat_id": str(chat), "kind": "broadcast",
                                                   "presenter_ids": [str(presenter)]})
    assert start == schemas.StartCall(chat, "broadcast", None, None, (presenter,))
    assert schemas.StartCallInput().load_command({"chat_id": str(chat)}) == schemas.StartCall(chat)
    with pytest.raises(dataclasses.FrozenInstanceError):
        start.kind = "call"
    call, stroke = uuid.uuid4(), uuid.uuid4()
    drawn = schemas.StrokeInput().load_command({"stroke_id": str(stroke), "color": schemas.PEN_COLORS[0],
                                                "width": 2, "points": [0, 0, 10, 10]}, call_id=call)
    assert drawn == schemas.DrawStroke(call, stroke, schemas.PEN_COLORS[0], 2, (0, 0, 10, 10))
    assert hash(drawn) == hash(schemas.DrawStroke(call, stroke, schemas.PEN_COLORS[0], 2, [0, 0, 10, 10]))
    with pytest.raises(marshmallow.ValidationError):  # CA-5: a room number is a positive integer
        schemas.BreakoutsInput().load_command({"count": 2, "assignment": {str(uuid.uuid4()): 0}}, call_id=call)
    moved = schemas.MoveInput().load_command({"user_id": str(stroke), "room": "room-1"}, call_id=call)
    assert moved == schemas.MoveParticipant(call, stroke, "room-1")
