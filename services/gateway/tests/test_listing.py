"""Every list route that pages by ``?limit=&cursor=`` (issue #17): one helper (gateway.listing) passes the page's
bounds to the service, answers the page as the list's array with the next cursor in ``X-Next-Cursor``, answers the
whole list without them (clients in the field), refuses bad bounds in the error shape, and the OpenAPI document
describes the parameters and the header."""

from __future__ import annotations

import pytest

from gateway.listing import NEXT_CURSOR
from shared.paging import encode_cursor

from .conftest import bearer

pytestmark = pytest.mark.unit

ORG = "6f1c2a52-3d0e-4b7a-9c41-0e5b8d7f2a13"  # fixed: it names parametrized tests, the same on every worker
# Every school list that answered whole before it paged: (route, service method).
SCHOOL_LISTS = [
    (f"/api/v1/organizations/{ORG}/classes", "classes"),
    (f"/api/v1/organizations/{ORG}/invites", "invites"),
    (f"/api/v1/organizations/{ORG}/join-requests", "join_requests"),
    (f"/api/v1/organizations/{ORG}/documents", "documents"),
    (f"/api/v1/organizations/{ORG}/articles", "articles"),
    (f"/api/v1/organizations/{ORG}/channels", "channels"),
    ("/api/v1/operator/applications", "pending_applications"),
]


def item(n: int) -> dict:
    return {"token": f"t{n}", "n": n}  # invites get their url from the token; the rest pass as they are


@pytest.mark.parametrize(("url", "method"), SCHOOL_LISTS)
def test_a_school_list_pages_with_the_next_cursor_in_the_header(client, rpc, url, method):
    cursor = encode_cursor("s5")
    rpc.answers[("school", method)] = lambda **kw: (
        {"items": [item(1), item(2)], "next_cursor": encode_cursor("s7")} if "limit" in kw else [item(1)])

    page = client.get(f"{url}?limit=2&cursor={cursor}", headers=bearer())
    assert page.status_code == 200, page.get_json()
    assert [i["n"] for i in page.get_json()] == [1, 2] and page.headers[NEXT_CURSOR] == encode_cursor("s7")
    assert {k: rpc.calls[-1][3][k] for k in ("cursor", "limit")} == {"cursor": cursor, "limit": 2}

    first = client.get(f"{url}?limit=3", headers=bearer())
    assert rpc.calls[-1][3]["cursor"] is None and rpc.calls[-1][3]["limit"] == 3 and first.status_code == 200
    more = client.get(f"{url}?cursor={cursor}", headers=bearer())  # a cursor alone: the default page size
    assert rpc.calls[-1][3]["limit"] == 50 and more.status_code == 200

    whole = client.get(url, headers=bearer())  # no bounds: the whole list as before, no header
    assert "cursor" not in rpc.calls[-1][3] and "limit" not in rpc.calls[-1][3]
    assert [i["n"] for i in whole.get_json()] == [1] and NEXT_CURSOR not in whole.headers


def test_the_last_page_has_no_next_cursor_and_invites_keep_their_url(client, rpc):
    rpc.answers[("school", "invites")] = {"items": [item(1)], "next_cursor": None}
    page = client.get(f"/api/v1/organizations/{ORG}/invites?limit=1", headers=bearer())
    assert NEXT_CURSOR not in page.headers
    assert page.get_json()[0]["url"].endswith("/invite/t1")


@pytest.mark.parametrize(("url", "method"), SCHOOL_LISTS)
@pytest.mark.parametrize(("query", "code"), [
    ("limit=0", "request.invalid"), ("limit=201", "request.invalid"), ("limit=abc", "request.invalid"),
    ("cursor=nonsense", "paging.invalid_cursor"), ("limit=1&cursor=bm90LW91cnM", "paging.invalid_cursor"),
])
def test_bad_bounds_are_refused_before_any_call(client, rpc, url, method, query, code):
    response = client.get(f"{url}?{query}", headers=bearer())
    assert response.status_code == 400 and response.get_json()["error"]["code"] == code, response.get_json()
    assert rpc.calls == []


def test_the_dashboard_asks_messaging_for_its_recent_chats_only(client, rpc):
    rpc.answers[("school", "dashboard")] = {"classes": []}
    rpc.answers[("ejournal_bridge", "lessons_under_way")] = []
    rpc.answers[("messaging", "chats")] = lambda **kw: {
        "items": [{"chat": {"chat_id": str(n)}, "last_seq": n, "unread": 0} for n in range(kw["limit"])],
        "next_cursor": encode_cursor("x")}
    desk = client.get("/api/v1/me/dashboard", headers=bearer())
    assert desk.status_code == 200, desk.get_json()
    assert len(desk.get_json()["recent_chats"]) == 10
    assert [c[3]["limit"] for c in rpc.calls if c[1] == "chats"] == [10]


def test_the_openapi_document_describes_paging_on_every_paged_list(client):
    paths = client.get("/openapi.json").get_json()["paths"]
    paged = [(url, "get") for url, _ in SCHOOL_LISTS] + [("/api/v1/chats", "get"),
                                                         (f"/api/v1/organizations/{ORG}/inbox", "get")]
    for url, verb in paged:
        operation = paths[url.replace(ORG, "{organization_id}")][verb]
        assert {p["name"] for p in operation["parameters"] if p["in"] == "query"} >= {"limit", "cursor"}, url
        assert NEXT_CURSOR in operation["responses"]["200"]["headers"], url
        assert "paging.invalid_cursor" in operation["responses"]["400"]["description"], url
