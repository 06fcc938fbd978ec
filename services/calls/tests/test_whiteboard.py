"""The call's whiteboard (CA-3, beta) against every store: the people in the call draw and see it, a late
joiner reads it whole with its revision, a broadcast's viewers only look, each undoes their own strokes, the
admin erases any or clears it, and the board is bounded with a clear refusal when full."""

from __future__ import annotations

import uuid

import pytest
from marshmallow import ValidationError

from calls.application import CallsApplication
from calls.outbox import to_integration_events
from shared.contracts import get_contract, make_event
from shared.contracts.api.calls import BOARD_MAX_POINTS, STROKE_MAX_POINTS, DrawStroke, StartCall, StrokeInput
from shared.errors import Conflict, Forbidden, Gone, NotFound
from shared.store import make_application

pytestmark = pytest.mark.integration


@pytest.fixture
def app(store_settings) -> CallsApplication:
    return make_application(CallsApplication, "calls", create_table=True, config=store_settings)


def people(n: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(n)]


def stroke(points: int = 3, color: str = "#dc2626") -> dict:
    return StrokeInput().load({"stroke_id": str(uuid.uuid4()), "color": color, "width": 4,
                               "points": [v for i in range(points) for v in (10 + i % 800, 20 + i % 800)]})


def board_events(app: CallsApplication) -> list[dict]:
    out = []
    for n in app.process_recorder.select_notifications(start=1, limit=10_000):
        for event_type, data, _ in to_integration_events(app.mapper.to_domain_event(n)):
            if event_type == "calls.WhiteboardChanged.v1":
                wire = make_event(event_type, data, event_id=f"calls:{n.id}").data
                out.append(get_contract(event_type).schema().load(wire))  # what travels fits its contract
    return out


def in_call(app: CallsApplication, n: int = 3):
    members = people(n)
    admin = uuid.UUID(members[0])
    call = app.start_call(admin, StartCall(uuid.uuid4(), title="Урок"), members)
    for m in members[1:]:
        app.join(uuid.UUID(m), call.id, members)
    return call, admin, [uuid.UUID(m) for m in members[1:]]


def test_ca3_the_people_in_the_call_draw_and_a_late_joiner_reads_the_board_with_its_revision(app):
    members = people(4)
    admin, pupil, late = (uuid.UUID(m) for m in members[:3])
    call = app.start_call(admin, StartCall(uuid.uuid4(), title="Урок"), members)
    app.join(pupil, call.id, members)
    assert app.whiteboard(pupil, call.id).revision == 0 and app.whiteboard(pupil, call.id).strokes == []

    red, blue = stroke(color="#dc2626"), stroke(color="#2563eb")
    drawn = app.draw(pupil, DrawStroke(call.id, **red))
    assert (drawn["action"], drawn["revision"], drawn["by"]) == ("drawn", 1, pupil)
    assert drawn["stroke"] == {**red, "stroke_id": str(red["stroke_id"]), "user_id": str(pupil)}
    assert app.draw(admin, DrawStroke(call.id, **blue))["revision"] == 2
    assert app.draw(pupil, DrawStroke(call.id, **red))["revision"] == 2  # the same stroke again (a retry): no change

    app.join(late, call.id, members)  # joins after the drawing: reads the board whole
    board = app.whiteboard(late, call.id)
    assert board.revision == 2
    assert [(s["user_id"], s["color"], s["points"]) for s in board.strokes] == [
        (str(pupil), "#dc2626", red["points"]), (str(admin), "#2563eb", blue["points"])]

    published = board_events(app)  # what the gateway pushes: every change, numbered
    assert [(e["action"], e["revision"], e["by"]) for e in published] == [("drawn", 1, pupil), ("drawn", 2, admin)]
    assert published[0]["call_id"] == call.id and published[0]["stroke"]["points"] == red["points"]


def test_ca3_only_the_people_in_the_call_see_and_draw_and_nobody_after_it_ends(app):
    call, admin, (pupil, other) = in_call(app)
    with pytest.raises(NotFound) as e:  # never in the call: it does not exist for them
        app.whiteboard(uuid.uuid4(), call.id)
    assert e.value.code == "call.not_found"
    with pytest.raises(NotFound):
        app.draw(uuid.uuid4(), DrawStroke(call.id, **stroke()))
    app.leave(other, call.id)
    for attempt in (lambda: app.whiteboard(other, call.id),
                    lambda: app.draw(other, DrawStroke(call.id, **stroke()))):
        with pytest.raises(Forbidden) as e:  # left: sees nothing more until they join again
            attempt()
        assert e.value.code == "call.whiteboard_participants_only"
    assert sorted(app.board_audience(call.id)) == sorted([str(admin), str(pupil)])
    app.end(admin, call.id)
    with pytest.raises(Gone):
        app.draw(pupil, DrawStroke(call.id, **stroke()))
    assert app.board_audience(call.id) == []


def test_ca9_a_broadcasts_viewers_see_the_board_and_only_its_presenters_draw(app):
    members = people(4)
    admin, presenter, viewer = (uuid.UUID(m) for m in members[:3])
    call = app.start_call(admin, StartCall(uuid.uuid4(), kind="broadcast", title="Линейка", presenter_ids=[presenter]),
                          members, uuid.uuid4(), may_broadcast=True)
    app.join(presenter, call.id, members)
    app.join(viewer, call.id, members)
    app.draw(presenter, DrawStroke(call.id, **stroke()))
    with pytest.raises(Forbidden) as e:
        app.draw(viewer, DrawStroke(call.id, **stroke()))
    assert e.value.code == "call.whiteboard_view_only"
    assert len(app.whiteboard(viewer, call.id).strokes) == 1


def test_ca3_each_undoes_their_own_strokes_and_the_admin_erases_any_or_clears_the_board(app):
    call, admin, (pupil, other) = in_call(app)
    first, second, others = stroke(), stroke(), stroke()
    app.draw(pupil, DrawStroke(call.id, **first))
    app.draw(pupil, DrawStroke(call.id, **second))
    app.draw(other, DrawStroke(call.id, **others))

    undone = app.undo(pupil, call.id)  # the pupil's latest, not the newest on the board
    assert (undone["action"], undone["stroke_id"], undone["revision"]) == ("erased", str(second["stroke_id"]), 4)
    with pytest.raises(Forbidden) as e:  # the eraser on someone else's stroke is the admin's
        app.erase(pupil, call.id, str(others["stroke_id"]))
    assert e.value.code == "call.admin_only"
    with pytest.raises(NotFound) as e:
        app.erase(admin, call.id, str(uuid.uuid4()))
    assert e.value.code == "call.no_such_stroke"
    app.erase(admin, call.id, str(others["stroke_id"]))
    assert [s["stroke_id"] for s in app.whiteboard(other, call.id).strokes] == [str(first["stroke_id"])]
    with pytest.raises(Conflict) as e:
        app.undo(other, call.id)
    assert e.value.code == "call.whiteboard_nothing_to_undo"

    with pytest.raises(Forbidden) as e:
        app.clear(pupil, call.id)
    assert e.value.code == "call.admin_only"
    cleared = app.clear(admin, call.id)
    assert (cleared["action"], cleared["revision"]) == ("cleared", 6)
    assert app.whiteboard(pupil, call.id).strokes == []
    assert [e["action"] for e in board_events(app)] == ["drawn", "drawn", "drawn", "erased", "erased", "cleared"]


def test_ca3_a_full_board_refuses_more_until_it_is_cleared(app):
    call, admin, (pupil, _) = in_call(app)
    for _ in range(BOARD_MAX_POINTS // STROKE_MAX_POINTS):
        app.draw(pupil, DrawStroke(call.id, **stroke(points=STROKE_MAX_POINTS)))
    with pytest.raises(Conflict) as e:
        app.draw(pupil, DrawStroke(call.id, **stroke(points=2)))
    assert e.value.code == "call.whiteboard_full" and e.value.details["max_points"] == BOARD_MAX_POINTS
    app.clear(admin, call.id)
    assert app.draw(pupil, DrawStroke(call.id, **stroke()))["revision"] == BOARD_MAX_POINTS // STROKE_MAX_POINTS + 2


def test_ca3_the_board_reads_the_same_from_its_snapshots(app):
    call, admin, (pupil, _) = in_call(app)
    drawn = [stroke(points=2) for _ in range(60)]
    for s in drawn:
        app.draw(pupil, DrawStroke(call.id, **s))
    app.undo(pupil, call.id)
    board = app.whiteboard(admin, call.id)
    assert board.revision == 61 and [s["stroke_id"] for s in board.strokes] == [str(s["stroke_id"]) for s in drawn[:-1]]


@pytest.mark.parametrize("bad", [
    {"points": [1, 2, 3]},  # not pairs
    {"points": [1, 2, 1601, 5]},  # off the board
    {"points": [1, 2] * (STROKE_MAX_POINTS + 1)},
    {"points": []},
    {"color": "#ff00ff"},
    {"width": 5},
    {"points": [1.5, 2]},
    {"stroke_id": "x"},
])
def test_a_stroke_is_pairs_on_the_board_in_a_pen_of_the_palette(bad):
    good = {"stroke_id": str(uuid.uuid4()), "color": "#1f2937", "width": 2, "points": [0, 0, 1600, 900]}
    assert StrokeInput().load(good)["points"] == [0, 0, 1600, 900]
    with pytest.raises(ValidationError):
        StrokeInput().load({**good, **bad})
