"""The chat list through the gateway (CH-4, issue #17): paged from messaging's read model with ?limit= (the next
page's cursor in X-Next-Cursor), the same chats in the same order as the whole list; a member removed from a
chat no longer finds it there (CH-3)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.helpers import eventually

pytestmark = pytest.mark.e2e


def test_the_chat_list_pages_in_the_order_of_the_whole_list_CH_3_CH_4(api, klass):
    admin, (a, b) = klass["admin"], klass["pupils"]
    ids = [api.ok("GET", "/me", p["access_token"])["user_id"] for p in (a, b)]
    chats = [api.chat_once_members_known(klass["org"], admin, f"Кружок {n}", ids) for n in range(5)]
    for n, chat_id in enumerate(chats[:3]):
        for _ in range(n + 1):
            api.ok("POST", f"/chats/{chat_id}/messages", admin["access_token"], status=201, json={"text": "м"})
    api.ok("PUT", f"/chats/{chats[2]}/read", a["access_token"], json={"seq": 0})

    whole = api.ok("GET", "/chats", a["access_token"])
    listed = [c["chat"]["chat_id"] for c in whole]
    assert set(chats) <= set(listed) and listed[:3] == [chats[2], chats[1], chats[0]]  # newest last seq first
    assert whole[0]["unread"] == 2 and whole[0]["last_seq"] == 2
    paged, cursor, pages = [], None, 0
    while True:
        response = api.call("GET", "/chats?limit=2" + (f"&cursor={cursor}" if cursor else ""), a["access_token"])
        assert response.status_code == 200, response.text
        assert len(response.json()) <= 2
        paged += response.json()
        pages += 1
        cursor = response.headers.get("X-Next-Cursor")
        if cursor is None:
            break
        assert pages < 20
    assert paged == whole
    for query, code in (("cursor=nonsense", "paging.invalid_cursor"), ("limit=0", "request.invalid"),
                        ("limit=1&cursor=cDE6eA", "paging.invalid_cursor")):
        bad = api.call("GET", f"/chats?{query}", a["access_token"])
        assert (bad.status_code, bad.json()["error"]["code"]) == (400, code), bad.text

    api.ok("DELETE", f"/chats/{chats[0]}/members/{ids[1]}", admin["access_token"])  # removed by its creator
    assert chats[0] not in [c["chat"]["chat_id"] for c in api.ok("GET", "/chats", b["access_token"])]  # at once
    assert chats[0] not in [c["chat"]["chat_id"] for c in api.ok("GET", "/chats?limit=50", b["access_token"])]


def paged(api, url: str, token: str, limit: int) -> list:
    items, cursor = [], None
    for _ in range(50):
        joiner = "&" if "?" in url else "?"
        response = api.call("GET", f"{url}{joiner}limit={limit}" + (f"&cursor={cursor}" if cursor else ""), token)
        assert response.status_code == 200, response.text
        assert len(response.json()) <= limit
        items += response.json()
        cursor = response.headers.get("X-Next-Cursor")
        if cursor is None:
            return items
    raise AssertionError("more pages than items")


def test_the_inbox_pages_in_the_order_the_threads_opened_CH_5(api, klass):
    admin, org = klass["admin"], klass["org"]
    third = api.member(org, admin, "student", klass["class_id"])
    threads = [api.ok("POST", "/inbox-threads", p["access_token"], json={"organization_id": org})["chat_id"]
               for p in (*klass["pupils"], third)]
    url = f"/organizations/{org}/inbox"
    whole = api.ok("GET", url, admin["access_token"])
    assert [t["chat_id"] for t in whole][-3:] == threads
    assert paged(api, url, admin["access_token"], 2) == whole
    first = api.call("GET", f"{url}?limit=1", admin["access_token"])
    assert first.json() == whole[:1] and first.headers["X-Next-Cursor"]
    refused = api.call("GET", f"{url}?limit=2", third["access_token"])
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "organization.role_required")


def test_the_chat_list_filters_by_name_in_the_server_newest_first_paged_CH_4(api, klass):
    """GET /chats?q= (issue #17): the web client's filter saw only the chats loaded. Each word of q starts a word
    of the chat's name (case and ё folded), newest first, a page at a time; one's own chats only; bad q: 400."""
    admin, a = klass["admin"], klass["pupils"][0]
    a_id = api.ok("GET", "/me", a["access_token"])["user_id"]
    mine = [api.chat_once_members_known(klass["org"], admin, name, [a_id])
            for name in ("Шахматный кружок Ёлки", "Ёлочный базар", "шахматы-ёлки 7")]
    for chat_id in (mine[2], mine[0]):  # the first one written last: newest
        api.ok("POST", f"/chats/{chat_id}/messages", admin["access_token"], status=201, json={"text": "м"})
    api.chat_once_members_known(klass["org"], admin, "Шахматы для других", [])  # not a's

    def names(url: str, token: str = a["access_token"]) -> list[str]:
        return [c["chat"]["name"] for c in api.ok("GET", url, token)]

    assert names("/chats?q=ШАХМ%20елк") == ["Шахматный кружок Ёлки", "шахматы-ёлки 7"]
    assert [c["chat"]["name"] for c in paged(api, "/chats?q=шахм", a["access_token"], 1)] == [
        "Шахматный кружок Ёлки", "шахматы-ёлки 7"]                     # and not the chat a is not in
    assert names("/chats?q=ужок") == []                                 # a word's start, not any part of it
    assert "Шахматы для других" in names("/chats?q=других", admin["access_token"])
    for query, code in (("q=%21%21%21", "chats.filter_no_words"), ("q=", "chats.filter_no_words"),
                        ("q=" + "а" * 101, "chats.filter_too_long")):
        bad = api.call("GET", f"/chats?{query}&limit=10", a["access_token"])
        assert (bad.status_code, bad.json()["error"]["code"]) == (400, code), bad.text


def test_the_filter_finds_a_dialog_by_the_other_persons_name_and_follows_a_rename_CH_1_CH_5(api, klass):
    """GET /chats?q= matched chats' own names only: a dialog (the client shows the other person's name) or an inbox
    thread (its writer's name to the admins, the school's to the writer) was found only among the chats the client
    had loaded. Messaging now learns the names from identity's and school's events through RabbitMQ: the other's
    surname finds the dialog, one's own does not; after a rename the new name does, the old one no longer; the
    admins who answer a thread are never matched for its writer (CH-5)."""
    org, admin, five = klass["org"], klass["admin"], klass["class_id"]
    x = api.member(org, admin, "student", five, last_name="Белозёрова", first_name="Варвара")
    y = api.member(org, admin, "student", five, last_name="Чернов", first_name="Тимофей")
    dialog = eventually(lambda: api.call("POST", "/direct-chats", x["access_token"], json={"user_id": y["user_id"]})
                        .json().get("chat_id"), what="messaging to know both share the class chat")

    def found(session: dict, q: str) -> list[str]:
        return [c["chat"]["chat_id"] for c in api.ok("GET", f"/chats?q={q}&limit=50", session["access_token"])]

    eventually(lambda: found(x, "черн") == [dialog], what="messaging to learn Чернов's name")
    assert found(y, "белозерова варв") == [dialog]                       # ё folded
    assert found(x, "белозёрова") == [] and found(y, "чернов") == []     # one's own name finds none of one's chats
    api.ok("PUT", "/me/profile", y["access_token"], json={
        "last_name": "Орлов", "first_name": "Тимофей", "birth_date": "2014-05-17", "sex": "male"})
    eventually(lambda: found(x, "орлов") == [dialog], what="the rename to reach messaging")
    assert found(x, "чернов") == []

    thread = eventually(lambda: api.call("POST", "/inbox-threads", x["access_token"], json={"organization_id": org})
                        .json().get("chat_id"), what="messaging to know the pupil is a member")
    api.ok("POST", f"/chats/{thread}/messages", admin["access_token"], status=201, json={"text": "Ответ"})
    assert thread in found(x, "школа чатов")                             # the writer is shown the school
    assert found(x, "администраторова") == []                            # never the admin who answered (CH-5)
    assert thread in found(admin, "белозёрова")                          # the admins are shown its writer


def test_the_names_backfill_asks_identity_and_school_over_rpc_and_names_nothing_twice(api, klass, platform):
    """``python -m messaging.names backfill`` (README): the people and schools named before messaging kept names,
    asked of identity and school over the platform's RPC (the naming itself: test_readmodel's backfill test)."""
    x = api.member(klass["org"], klass["admin"], "student", klass["class_id"], last_name="Заполнина", first_name="Ия")
    eventually(lambda: api.call("POST", "/direct-chats", x["access_token"], json={
        "user_id": klass["pupils"][0]["user_id"]}).status_code == 200, what="a dialog")

    def backfill() -> str:
        done = subprocess.run([sys.executable, "-m", "messaging.names", "backfill"], env=platform.env(),
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    assert re.search(r"named \d+ people and \d+ organizations", backfill())
    assert "named 0 people and 0 organizations" in backfill()  # what had no name has one now (or its owner said no)
