"""Message search end to end through the gateway (issue #17): GET /api/v1/messages/search finds messages by words
(Russian word forms) in one's chats of now, newest first, paged; an edit re-indexes, a deletion hides; nobody finds
another school's or another chat's messages; bad input is a 400 in the one error shape."""

from __future__ import annotations

import pytest

from tests.e2e.test_messaging import chat_of, pupils_class_chat
from tests.helpers import eventually

pytestmark = pytest.mark.e2e


def search(api, session, **query) -> dict:
    return api.ok("GET", "/messages/search", session["access_token"], params=query)


def refused(api, session, **query) -> tuple[int, str, str]:
    response = api.call("GET", "/messages/search", session["access_token"], params=query)
    error = response.json()["error"]
    assert {"code", "message", "details"} <= set(error) and error["message"]
    return response.status_code, error["code"], str(error["details"])


def test_messages_are_found_by_word_forms_in_ones_chats_only(api, klass):
    a, b = klass["pupils"]
    chat = pupils_class_chat(api, klass)
    path = f"/chats/{chat['chat_id']}/messages"
    posted = api.ok("POST", path, a["access_token"], status=201, json={"text": "Контрольная работа в пятницу"})
    api.ok("POST", path, a["access_token"], status=201, json={"text": "Завтра урок литературы"})

    (hit,) = search(api, b, q="контрольной")["items"]
    (shown,) = [m for m in api.ok("GET", path, b["access_token"])["items"] if m["seq"] == posted["seq"]]
    assert {k: hit[k] for k in ("seq", "message_id", "author_id", "text", "posted_at", "edited_at")} == {
        k: shown[k] for k in ("seq", "message_id", "author_id", "text", "posted_at", "edited_at")}
    assert (hit["chat_id"], hit["chat_kind"]) == (chat["chat_id"], "class")
    assert [i["text"] for i in search(api, b, q="уроки", chat_id=chat["chat_id"])["items"]] == [
        "Завтра урок литературы"]

    # An edit replaces what is found; a deletion hides it.
    api.ok("PUT", f"{path}/{posted['seq']}", a["access_token"], json={"text": "Диктант в пятницу"})
    assert search(api, b, q="контрольная")["items"] == []
    assert [i["text"] for i in search(api, b, q="диктанты")["items"]] == ["Диктант в пятницу"]
    api.ok("DELETE", f"{path}/{posted['seq']}", a["access_token"])
    assert search(api, b, q="диктант")["items"] == []

    # A chat one is not in: nothing of it, and asking for it is refused as its history is.
    admin = klass["admin"]
    club = api.ok("POST", "/chats", admin["access_token"], status=201,
                  json={"organization_id": klass["org"], "name": "Олимпиадники", "member_ids": [a["user_id"]]})
    api.ok("POST", f"/chats/{club['chat_id']}/messages", admin["access_token"], status=201,
           json={"text": "Олимпиада по математике в субботу"})
    assert [i["chat_name"] for i in search(api, a, q="олимпиады")["items"]] == ["Олимпиадники"]
    assert search(api, b, q="олимпиада")["items"] == []
    assert refused(api, b, q="олимпиада", chat_id=club["chat_id"])[:2] == (403, "chat.members_only")
    api.ok("DELETE", f"/chats/{club['chat_id']}/members/{a['user_id']}", admin["access_token"])
    assert search(api, a, q="олимпиада")["items"] == []  # removed: nothing of that chat any more

    # Another school's pupil finds only their own school's messages.
    org, other_admin = api.organization("Другая школа", "Казань")
    six = api.ok("POST", f"/organizations/{org}/classes", other_admin["access_token"], status=201,
                 json={"name": "6Б", "start_year": 2024, "end_year": 2031})["class_id"]
    theirs = api.member(org, other_admin, "student", six)
    their_chat = eventually(lambda: chat_of(api, theirs, "class"), what="the other school's class chat")
    api.ok("POST", f"/chats/{their_chat['chat_id']}/messages", theirs["access_token"], status=201,
           json={"text": "У нас урок физкультуры"})
    assert [i["text"] for i in search(api, theirs, q="урок")["items"]] == ["У нас урок физкультуры"]
    assert [i["text"] for i in search(api, b, q="урок")["items"]] == ["Завтра урок литературы"]


def test_pages_follow_one_another_without_gaps(api, klass):
    a, b = klass["pupils"]
    chat = eventually(lambda: chat_of(api, a, "class"), what="messaging to build the class chat")
    path = f"/chats/{chat['chat_id']}/messages"
    sent = [api.ok("POST", path, a["access_token"], status=201, json={"text": f"Экскурсия номер {n}"})["seq"]
            for n in range(5)]
    seen, cursor, pages = [], None, 0
    while True:
        page = search(api, b, q="экскурсии", limit=2, **({"cursor": cursor} if cursor else {}))
        seen += [i["seq"] for i in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert (pages, seen) == (3, sorted(sent, reverse=True))


def test_bad_searches_are_400_in_the_error_shape(api, klass):
    a = klass["pupils"][0]
    assert refused(api, a)[:2] == (400, "request.invalid")  # no q
    for q in ("", "   ", "я" * 201):
        status, code, details = refused(api, a, q=q)
        assert (status, code) == (400, "request.invalid") and "'q'" in details
    assert refused(api, a, q="!!!")[:2] == (400, "search.no_words")
    assert refused(api, a, q="урок", cursor="bm9wZQ")[:2] == (400, "paging.invalid_cursor")
    assert refused(api, a, q="урок", limit=0)[:2] == (400, "request.invalid")
    assert refused(api, a, q="урок", chat_id="not-a-chat")[:2] == (400, "request.invalid")
    response = api.call("GET", "/messages/search", params={"q": "урок"})
    assert response.status_code == 401
