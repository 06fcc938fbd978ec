"""The chat list in the browser a page at a time (issue #17): a person of 120 chats gets the first 50, scrolling
asks the next pages (IntersectionObserver) down to the last chat, each chat once; a "show more" button does the same
for keyboards; a message in a chat not yet loaded brings it to the top live; Russian and English; axe and
screenshots at 360 px and desktop."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e

CHATS = 120
PAGE = 50  # web/src/features/chats/store.ts CHAT_PAGE


@pytest.fixture(scope="module")
def crowd(api):
    """A teacher in 120 chats (made by their school's admin, one message in each but the last made, oldest first)."""
    org, admin = api.organization("Школа многих чатов", "Тула")
    teacher = api.member(org, admin, "teacher", last_name="Многочатова", first_name="Вера", birth_date="1980-02-02",
                         sex="female")
    first = api.chat_once_members_known(org, admin, "Чат 000", [teacher["user_id"]])
    chats = [first] + [api.ok("POST", "/chats", admin["access_token"], status=201, json={
        "organization_id": org, "name": f"Чат {n:03}", "member_ids": [teacher["user_id"]]})["chat_id"]
        for n in range(1, CHATS)]
    for n, chat_id in enumerate(chats):
        api.ok("POST", f"/chats/{chat_id}/messages", admin["access_token"], status=201, json={"text": f"Сообщение {n}"})
    total = len(api.ok("GET", "/chats", teacher["access_token"]))  # with the school's own chats of teachers, if any
    assert total >= CHATS
    return {"org": org, "admin": admin, "teacher": teacher, "chats": chats, "total": total}


def pages_asked(page) -> list[str]:
    return [r for r in page.evaluate("performance.getEntriesByType('resource').map(e => e.name)")
            if "/api/v1/chats?" in r]


def test_a_person_of_120_chats_scrolls_to_the_last_one_page_by_page(people, api, crowd):
    teacher = people("teacher")
    teacher.sign_in_as(crowd["teacher"], "/chats")
    page = teacher.page
    rows = page.locator(".chat-list > li")
    expect(rows).to_have_count(PAGE)  # the first page only
    asked = pages_asked(page)
    assert asked and all("limit=50" in url for url in asked), asked
    teacher.screen("chat-list-paged")

    # Scrolling asks the next pages as their end comes into view, down to the last (the oldest) chat.
    for _ in range(10):
        rows.last.scroll_into_view_if_needed()
        page.wait_for_load_state("networkidle")
        if rows.count() >= crowd["total"]:
            break
    expect(rows).to_have_count(crowd["total"])
    shown = page.locator(".chat-list > li").evaluate_all("els => els.map(e => e.dataset.chat)")
    assert set(crowd["chats"]) <= set(shown) and len(set(shown)) == len(shown)  # each chat once, none missing
    expect(page.locator(f"[data-chat='{crowd['chats'][0]}']")).to_contain_text("Чат 000")
    expect(page.locator("[data-more]")).to_have_count(0)  # the end: no button
    assert any("cursor=" in url for url in pages_asked(page))

    # A message in a chat further down moves it to the top, live.
    api.ok("POST", f"/chats/{crowd['chats'][0]}/messages", crowd["admin"]["access_token"], status=201,
           json={"text": "Снова наверху"})
    expect(rows.first).to_contain_text("Снова наверху")
    expect(rows.first).to_contain_text("Чат 000")
    expect(rows).to_have_count(crowd["total"])


def test_show_more_by_keyboard_and_in_english(people, api, crowd):
    teacher = people("teacher")
    # A tall first screen would not need the observer; the button is what a keyboard and a screen reader use.
    teacher.context.add_init_script("delete window.IntersectionObserver")
    teacher.sign_in_as(crowd["teacher"], "/chats")
    page = teacher.page
    page.get_by_role("button", name="English").click()
    rows = page.locator(".chat-list > li")
    expect(rows).to_have_count(PAGE)
    more = page.get_by_role("button", name="Show more")
    more.focus()
    page.keyboard.press("Enter")
    expect(rows).to_have_count(2 * PAGE)
    teacher.screen("chat-list-more-en")
    page.get_by_role("button", name="Show more").click()
    expect(rows).to_have_count(crowd["total"])
    expect(page.get_by_role("button", name="Show more")).to_have_count(0)


def test_an_admins_invite_links_and_documents_page_as_they_scroll_SC_5_SC_10(people, api):
    """The admins' lists that grow (invite links, documents; join requests and channels the same way) ask pages of
    50 through one composable and load more as their end scrolls into view."""
    org, admin = api.organization("Школа длинных списков", "Тула")
    t = admin["access_token"]
    klass = api.ok("POST", f"/organizations/{org}/classes", t, status=201,
                   json={"name": "7Д", "start_year": 2025, "end_year": 2030})["class_id"]
    invites = [api.ok("POST", f"/organizations/{org}/invites", t, status=201,
                      json={"role": "student", "class_id": klass, "validity": "7d", "max_uses": 30})["invite_id"]
               for _ in range(PAGE + 5)]
    for n in range(PAGE + 3):
        api.ok("POST", f"/organizations/{org}/documents", t, status=201, data={"title": f"Приказ {n:02}"},
               files={"file": (f"p{n}.pdf", b"%PDF-1.4 " + str(n).encode(), "application/pdf")})
    me = people("admin-lists")
    me.sign_in_as(admin, f"/schools/{org}/manage/invites")
    page = me.page
    rows = page.locator("[data-invite]")
    expect(rows).to_have_count(PAGE)
    rows.last.scroll_into_view_if_needed()
    expect(rows).to_have_count(PAGE + 5)
    shown = rows.evaluate_all("els => els.map(e => e.dataset.invite)")
    assert sorted(shown) == sorted(invites)  # each once, none missing
    expect(page.locator("[data-more]")).to_have_count(0)

    page.goto(f"/schools/{org}/manage/documents")
    docs = page.locator(".list-item").filter(has_text="Приказ")
    expect(docs).to_have_count(PAGE)
    expect(docs.first).to_contain_text(f"Приказ {PAGE + 2:02}")  # newest first
    me.screen("admin-documents-paged")
    docs.last.scroll_into_view_if_needed()
    expect(docs).to_have_count(PAGE + 3)
    expect(docs.last).to_contain_text("Приказ 00")
