"""Who has read a message, through the gateway (CH-4): the members whose read mark is at or after it, for the
message's author (and the chat's admins), paged; another member is refused with its code."""

from __future__ import annotations

import pytest

from tests.e2e.test_messaging import pupils_class_chat

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
