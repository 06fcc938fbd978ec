"""The call's whiteboard through the gateway (CA-3, beta): a stroke POSTed by one person in the call is pushed
over the realtime socket to the others in it, and to nobody else; a late joiner reads the board whole and then
follows its revisions; undo, the admin's eraser and clear travel the same way; refusals have their codes."""

from __future__ import annotations

import time
import uuid

import pytest

from tests.e2e.test_realtime import connect, next_event

pytestmark = pytest.mark.e2e


def stroke(color: str = "#2563eb", points: list[int] | None = None) -> dict:
    return {"stroke_id": str(uuid.uuid4()), "color": color, "width": 4, "points": points or [100, 100, 400, 300]}


def test_ca3_strokes_reach_the_people_in_the_call_live_and_a_late_joiner_reads_the_board(api, room, platform):
    admin, drawer, late, outsider = room["people"]
    call_id = api.ok("POST", "/calls", admin["access_token"], status=201, json={"chat_id": room["chat_id"]})["call_id"]
    board = f"/calls/{call_id}/whiteboard"
    api.ok("POST", f"/calls/{call_id}/join", drawer["access_token"])
    admin_ws, outsider_ws = connect(platform, admin), connect(platform, outsider)  # the outsider: in the chat only

    sent_at = time.monotonic()
    first = api.ok("POST", f"{board}/strokes", drawer["access_token"], status=201, json=stroke())
    assert (first["action"], first["revision"], first["stroke"]["user_id"]) == ("drawn", 1, room["ids"][1])
    pushed = next_event(admin_ws, "WhiteboardChanged")
    assert (pushed["revision"], pushed["stroke"]["points"], pushed["call_id"]) == (1, [100, 100, 400, 300], call_id)
    assert time.monotonic() - sent_at < 2
    api.ok("POST", f"{board}/strokes", admin["access_token"], status=201, json=stroke("#dc2626"))
    assert next_event(admin_ws, "WhiteboardChanged")["revision"] == 2

    refused = api.call("GET", board, outsider["access_token"])  # may join, has not: sees nothing of it yet
    assert (refused.status_code, refused.json()["error"]["code"]) == (404, "call.not_found")
    assert outsider_ws.receive(timeout=0.5) is None

    # A late joiner reads the board whole, then follows it from its revision.
    api.ok("POST", f"/calls/{call_id}/join", late["access_token"])
    shown = api.ok("GET", board, late["access_token"])
    assert shown["revision"] == 2 and [s["color"] for s in shown["strokes"]] == ["#2563eb", "#dc2626"]
    assert (shown["width"], shown["height"]) == (1600, 900)
    late_ws = connect(platform, late)
    api.ok("POST", f"{board}/undo", drawer["access_token"])
    undone = next_event(late_ws, "WhiteboardChanged")
    assert (undone["action"], undone["stroke_id"], undone["revision"]) == ("erased", first["stroke_id"], 3)

    # The eraser on someone else's stroke and clearing are the admin's.
    theirs = api.ok("POST", f"{board}/strokes", late["access_token"], status=201, json=stroke())["stroke_id"]
    refused = api.call("DELETE", f"{board}/strokes/{theirs}", drawer["access_token"])
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "call.admin_only")
    assert api.call("DELETE", board, drawer["access_token"]).json()["error"]["code"] == "call.admin_only"
    api.ok("DELETE", f"{board}/strokes/{theirs}", admin["access_token"])
    api.ok("DELETE", board, admin["access_token"])
    assert [next_event(late_ws, "WhiteboardChanged")["action"] for _ in range(3)] == ["drawn", "erased", "cleared"]
    assert api.ok("GET", board, late["access_token"])["strokes"] == []

    # Bad strokes get the one error shape, never a 5xx.
    for bad in ({**stroke(), "points": [1, 2, 3]}, {**stroke(), "color": "pink"}, {**stroke(), "points": [5000, 1]}):
        answer = api.call("POST", f"{board}/strokes", drawer["access_token"], json=bad)
        assert answer.status_code == 400 and answer.json()["error"]["code"] == "request.invalid", answer.text

    # Whoever left sees nothing more.
    api.ok("POST", f"/calls/{call_id}/leave", drawer["access_token"])
    refused = api.call("GET", board, drawer["access_token"])
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "call.whiteboard_participants_only")
    api.ok("POST", f"{board}/strokes", admin["access_token"], status=201, json=stroke())
    assert next_event(late_ws, "WhiteboardChanged")["action"] == "drawn"
    drawer_ws = connect(platform, drawer)
    api.ok("POST", f"{board}/strokes", admin["access_token"], status=201, json=stroke())
    assert next_event(late_ws, "WhiteboardChanged")["revision"] == 8
    assert drawer_ws.receive(timeout=0.5) is None
    for ws in (admin_ws, outsider_ws, late_ws, drawer_ws):
        ws.close()


def test_a_stroke_reaches_the_others_as_fast_as_a_chat_message_does(api, room, platform):
    """POST → pushed over the socket, 20 strokes and, as the same run's baseline, 20 chat messages (the path every
    chat message takes: outbox, relay, broker, the gateway's fan-out)."""
    admin, drawer = room["people"][:2]
    call_id = api.ok("POST", "/calls", admin["access_token"], status=201, json={"chat_id": room["chat_id"]})["call_id"]
    api.ok("POST", f"/calls/{call_id}/join", drawer["access_token"])
    ws = connect(platform, admin)

    def timed(post, kind: str) -> list[float]:
        took = []
        for n in range(20):
            started = time.monotonic()
            post(n)
            next_event(ws, kind)
            took.append(time.monotonic() - started)
        return sorted(took)

    strokes = timed(lambda n: api.ok("POST", f"/calls/{call_id}/whiteboard/strokes", drawer["access_token"],
                                     status=201, json=stroke(points=[n, n, n + 50, n + 50])), "WhiteboardChanged")
    messages = timed(lambda n: api.ok("POST", f"/chats/{room['chat_id']}/messages", drawer["access_token"],
                                      status=201, json={"text": f"m{n}"}), "MessagePosted")
    ws.close()
    print(f"\nstroke POST->push p50 {strokes[9] * 1000:.0f} ms, max {strokes[-1] * 1000:.0f} ms; "
          f"chat message p50 {messages[9] * 1000:.0f} ms, max {messages[-1] * 1000:.0f} ms")
    assert strokes[9] < 1.0 and strokes[9] < 3 * messages[9] + 0.1
