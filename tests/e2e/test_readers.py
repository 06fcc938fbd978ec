"""Who has read a message, through the gateway (CH-4): the members whose read mark is at or after it, for the
message's author (and the chat's admins), paged; another member is refused with its code."""

from __future__ import annotations

import json
import time

import pytest

from tests.e2e.test_messaging import pupils_class_chat
from tests.e2e.test_realtime import connect, next_event
from tests.helpers import eventually

pytestmark = pytest.mark.e2e


def test_the_author_sees_who_has_read_their_message_and_others_do_not_CH_4(api, klass):
    a, b = klass["pupils"]
    chat = pupils_class_chat(api, klass)
    messages = f"/chats/{chat['chat_id']}/messages"
    seq = api.ok("POST", messages, a["access_token"], status=201, json={"text": "Кто прочитал?"})["seq"]
    assert api.ok("GET", f"{messages}/{seq}/readers", a["access_token"]) == {
        "items": [], "count": 0, "next_cursor": None}

    api.ok("PUT", f"/chats/{chat['chat_id']}/read", b["access_token"], json={"seq": seq})
    page = api.ok("GET", f"{messages}/{seq}/readers?limit=1", a["access_token"])
    assert page["count"] == 1 and page["items"] == [{"user_id": b["user_id"]}] and page["next_cursor"] is None

    refused = api.call("GET", f"{messages}/{seq}/readers", b["access_token"])  # not b's message
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "message.readers_forbidden")
    outsider = api.call("GET", f"{messages}/{seq}/readers", api.sign_in()["access_token"])
    assert outsider.status_code in (403, 404) and outsider.json()["error"]["code"].startswith("chat.")
    for query, code in (("cursor=nonsense", "paging.invalid_cursor"), ("limit=0", "request.invalid")):
        bad = api.call("GET", f"{messages}/{seq}/readers?{query}", a["access_token"])
        assert (bad.status_code, bad.json()["error"]["code"]) == (400, code), bad.text
    missing = api.call("GET", f"{messages}/{seq + 100}/readers", a["access_token"])
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "message.not_found")


def test_a_post_is_one_frame_that_implies_its_authors_read_mark_CH_4(api, platform, klass):
    """Issue #17: each post reaches a member's socket once (MessagePosted, ``read_by_author``), not twice (and the
    author's MessagesRead); the author's read mark is kept all the same: who has read the message before it names
    them. A reader's mark-read is still pushed as MessagesRead."""
    a, b = klass["pupils"]
    chat = pupils_class_chat(api, klass)
    messages = f"/chats/{chat['chat_id']}/messages"
    b_ws, a_ws = connect(platform, b), connect(platform, a)
    try:
        asked = api.ok("POST", messages, b["access_token"], status=201, json={"text": "Что задали?"})["seq"]
        answers = [api.ok("POST", messages, a["access_token"], status=201, json={"text": text})["seq"]
                   for text in ("Параграф 5", "и упражнение 3")]
        frames, deadline = [], time.monotonic() + 10
        while sum(f["type"] == "MessagePosted" for f in frames) < 3 and time.monotonic() < deadline:
            raw = b_ws.receive(timeout=0.2)
            frames += [json.loads(raw)] if raw else []
        settle = time.monotonic() + 1.5  # anything a post would still push lands meanwhile
        while time.monotonic() < settle:
            raw = b_ws.receive(timeout=0.2)
            frames += [json.loads(raw)] if raw else []
        assert [(f["type"], f["data"]["seq"], f["data"]["author_id"], f["data"]["read_by_author"])
                for f in frames] == [("MessagePosted", asked, b["user_id"], True),
                                     ("MessagePosted", answers[0], a["user_id"], True),
                                     ("MessagePosted", answers[1], a["user_id"], True)], frames
        # each says where its author's mark was before it: a's second answer read only itself for a
        assert frames[2]["data"]["author_read_from"] == answers[0]
        # a read the chat up to what they wrote: b's question has a reader, and a has nothing unread
        def readers() -> dict:
            found = api.ok("GET", f"{messages}/{asked}/readers", b["access_token"])
            return found if found["count"] else {}

        def listed() -> dict:
            (item,) = [c for c in api.ok("GET", "/chats", a["access_token"]) if c["chat"]["chat_id"] == chat["chat_id"]]
            return item if item["last_seq"] == answers[1] else {}

        assert eventually(readers, what="a's mark in the read model") == {
            "items": [{"user_id": a["user_id"]}], "count": 1, "next_cursor": None}
        assert eventually(listed, what="a's chat list to count a's last post")["unread"] == 0
        api.ok("PUT", f"/chats/{chat['chat_id']}/read", b["access_token"], json={"seq": answers[1]})
        read = next_event(a_ws, "MessagesRead")
        # b had read up to its own question: the mark newly read a's two answers
        assert (read["user_id"], read["read_from"], read["read_until"]) == (b["user_id"], asked, answers[1])
    finally:
        b_ws.close()
        a_ws.close()
