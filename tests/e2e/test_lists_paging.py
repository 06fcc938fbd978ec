"""School's lists through the gateway page by ?limit=&cursor= (issue #17): classes, invite links, join requests,
documents, articles, channels and the applications waiting for an operator, each paged to its end gives the whole
list (no gaps, no doubles, the same order), the next page's cursor in X-Next-Cursor; without ?limit= the whole list
as before; bad bounds are refused in the error shape (SC-1, SC-3, SC-4, SC-5, SC-10..SC-12)."""

from __future__ import annotations

import pytest

from tests.e2e.test_chat_list import paged
from tests.helpers import eventually

pytestmark = pytest.mark.e2e

ITEMS = 5  # of each list: pages of 2 make three pages, the last one short


def key(item: dict) -> str:
    return next(str(item[k]) for k in ("invite_id", "user_id", "document_id", "article_id", "channel_id", "class_id",
                                       "application_id") if k in item)


def assert_pages_whole(api, url: str, token: str, at_least: int) -> list:
    whole = api.ok("GET", url, token)
    assert isinstance(whole, list) and len(whole) >= at_least, (url, whole)
    for limit in (2, 1):
        pages = paged(api, url, token, limit)
        assert [key(i) for i in pages] == [key(i) for i in whole], url  # no gap, no double, the same order
        assert pages == whole, url
    first = api.call("GET", f"{url}?limit={len(whole)}", token)
    assert first.json() == whole and "X-Next-Cursor" not in first.headers, url  # the last page says so
    for query, code in (("limit=0", "request.invalid"), ("limit=201", "request.invalid"),
                        ("cursor=nonsense", "paging.invalid_cursor"),
                        ("limit=1&cursor=cDE6eA", "paging.invalid_cursor")):
        bad = api.call("GET", f"{url}?{query}", token)
        assert (bad.status_code, bad.json()["error"]["code"]) == (400, code), (url, query, bad.text)
    return whole


def test_every_school_list_pages_to_its_end_without_gaps_or_doubles(api):
    org, admin = api.organization("Школа страниц", "Пенза")
    t = admin["access_token"]
    base = f"/organizations/{org}"
    classes = [api.ok("POST", f"{base}/classes", t, status=201,
                      json={"name": f"{n + 1}А", "start_year": 2025, "end_year": 2030 + n})["class_id"]
               for n in range(ITEMS)]
    for n in range(ITEMS):
        api.ok("POST", f"{base}/invites", t, status=201,
               json={"role": "student", "class_id": classes[n], "validity": "1d", "max_uses": 3})
        api.ok("POST", f"{base}/documents", t, status=201, data={"title": f"Документ {n}"},
               files={"file": (f"d{n}.pdf", b"%PDF-1.4 " + bytes([n]), "application/pdf")})
        article = api.ok("POST", f"{base}/articles", t, status=201, json={"title": f"Статья {n}", "html": "<p>т</p>"})
        if n % 2:
            api.ok("POST", f"/articles/{article['article_id']}/publication", t)
        api.ok("POST", f"{base}/channels", t, status=201, json={"name": f"Канал {n}"})
    askers = [api.person(name, "Пётр", "2012-01-01", "male") for name in ("Первов", "Вторых", "Третьяков")]
    for asker in askers:
        api.ok("POST", f"{base}/join-requests", asker["access_token"], status=201, json={"message": "Возьмите"})
    eventually(lambda: len(api.ok("GET", f"{base}/join-requests", t)) == len(askers), what="the join requests")

    assert [c["class_id"] for c in assert_pages_whole(api, f"{base}/classes", t, ITEMS)] == classes  # SC-4
    assert len(assert_pages_whole(api, f"{base}/invites", t, ITEMS)) == ITEMS  # SC-5
    assert_pages_whole(api, f"{base}/documents", t, ITEMS)  # SC-10
    assert len(assert_pages_whole(api, f"{base}/articles", t, ITEMS)) == ITEMS  # SC-11: one's drafts too
    assert_pages_whole(api, f"{base}/channels", t, ITEMS)  # SC-12
    requests = assert_pages_whole(api, f"{base}/join-requests", t, len(askers))  # SC-3
    assert {r["user_id"] for r in requests} == {a["user_id"] for a in askers}

    reader = api.member(org, admin, "student", classes[0])["access_token"]  # readers see the published only
    published = assert_pages_whole(api, f"{base}/articles", reader, ITEMS // 2)
    assert len(published) == ITEMS // 2


def test_the_operators_pending_applications_page_to_their_end_SC_1(api):
    operator = api.operator()["access_token"]
    for n in range(3):
        phone = api.ok("GET", "/me", api.sign_in()["access_token"])["phone"]
        api.ok("POST", "/organization-applications", status=201, json={
            "name": f"Ждущая школа {n}", "kind": "school", "country": "RU", "city": "Пенза", "admin_phone": phone})
    whole = assert_pages_whole(api, "/operator/applications", operator, 3)
    assert [a["name"] for a in whole if a["name"].startswith("Ждущая школа")] == [f"Ждущая школа {n}"
                                                                                  for n in range(3)]
