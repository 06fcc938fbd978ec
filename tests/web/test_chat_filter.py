"""The chat list's name filter in the browser (issue #17): the list pages (50 at a time), so the box above it asks
the server (GET /chats?q=) after a pause in typing: a chat not loaded yet among 120 shows; so do a dialog not
loaded, by the other person's name, and an inbox thread not loaded, by the school's name (the server matches them
by the names shown here; one's own name finds none); "nothing found" when nothing matches; Russian and English;
axe and screenshots at 360 px and desktop."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.helpers import eventually

pytestmark = pytest.mark.e2e

CHATS = 120
PAGE = 50  # web/src/features/chats/store.ts CHAT_PAGE


@pytest.fixture(scope="module")
def crowd(api):
    """A teacher in 120 chats; a dialog with a pupil, the teacher's thread to the school and a chess club written
    in first (the oldest: far below the first page)."""
    org, admin = api.organization("Школа фильтра чатов", "Тула")
    teacher = api.member(org, admin, "teacher", last_name="Фильтрова", first_name="Нина", birth_date="1980-02-02",
                         sex="female")
    klass = api.ok("POST", f"/organizations/{org}/classes", admin["access_token"], status=201,
                   json={"name": "3В", "start_year": 2024, "end_year": 2033})["class_id"]
    pupil = api.member(org, admin, "student", klass, last_name="Ёжиков", first_name="Пётр", birth_date="2014-02-02",
                       sex="male")
    club = api.chat_once_members_known(org, admin, "Шахматный кружок «Ладья»", [teacher["user_id"]])
    dialog = eventually(lambda: api.call("POST", "/direct-chats", pupil["access_token"], json={
        "user_id": teacher["user_id"]}).json().get("chat_id"), what="messaging to know both share the school's chat")
    api.ok("POST", f"/chats/{dialog}/messages", pupil["access_token"], status=201, json={"text": "Здравствуйте"})
    thread = api.ok("POST", "/inbox-threads", teacher["access_token"], json={"organization_id": org})["chat_id"]
    api.ok("POST", f"/chats/{thread}/messages", teacher["access_token"], status=201, json={"text": "Вопрос"})
    chats = [api.ok("POST", "/chats", admin["access_token"], status=201, json={
        "organization_id": org, "name": f"Чат {n:03}", "member_ids": [teacher["user_id"]]})["chat_id"]
        for n in range(CHATS)]
    for chat_id in [club, *chats]:
        api.ok("POST", f"/chats/{chat_id}/messages", admin["access_token"], status=201, json={"text": "Сообщение"})
    listed = [c["chat"]["chat_id"] for c in api.ok("GET", "/chats?limit=50", teacher["access_token"])]
    assert not {club, dialog, thread} & set(listed)  # none of them on the first page
    eventually(lambda: [c["chat"]["chat_id"] for c in api.ok("GET", "/chats?q=ёжиков", teacher["access_token"])]
               == [dialog], what="messaging to learn the pupil's name")
    return {"teacher": teacher, "club": club, "dialog": dialog, "thread": thread}


def test_the_filter_finds_a_chat_not_loaded_yet_among_120(people, crowd):
    teacher = people("teacher")
    teacher.sign_in_as(crowd["teacher"], "/chats")
    page = teacher.page
    rows = page.locator(".chat-list > li")
    expect(rows).to_have_count(PAGE)
    expect(page.locator(f"[data-chat='{crowd['club']}']")).to_have_count(0)

    box = page.get_by_label("Поиск по названию")
    box.press_sequentially("шахм ЛАД", delay=30)      # typed: one request after the pause, words as prefixes
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-chat", crowd["club"])
    expect(rows.first).to_contain_text("Шахматный кружок «Ладья»")
    expect(rows.first).to_contain_text("Сообщение")   # its last message, asked for the chat found
    asked = [r for r in page.evaluate("performance.getEntriesByType('resource').map(e => e.name)") if "q=" in r]
    assert asked and all("limit=50" in r for r in asked), asked
    assert len(asked) <= 3, asked                      # debounced: not a request a keystroke
    teacher.screen("chat-filter-found")

    box.fill("ёжик")                                   # the dialog, not loaded: by its person's name
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-chat", crowd["dialog"])
    expect(rows.first).to_contain_text("Ёжиков Пётр")  # named as the server matched it
    expect(rows.first).to_contain_text("Здравствуйте")
    teacher.screen("chat-filter-dialog")

    box.fill("фильтра чатов")                          # the thread to the school, not loaded: by the school's name
    expect(page.locator(f"[data-chat='{crowd['thread']}']")).to_contain_text("Школа фильтра чатов")
    expect(rows).to_have_count(2)                      # and the school's own chat

    box.fill("нина")                                   # one's own name names none of one's chats
    expect(page.get_by_text("Ничего не нашлось.")).to_be_visible()

    box.fill("кружок шашки")
    expect(page.get_by_text("Ничего не нашлось.")).to_be_visible()
    expect(rows).to_have_count(0)
    teacher.screen("chat-filter-nothing")

    box.fill("")
    expect(rows).to_have_count(PAGE)                   # the list as it was


def test_the_filter_in_english(people, crowd):
    teacher = people("teacher")
    teacher.sign_in_as(crowd["teacher"], "/chats")
    page = teacher.page
    page.get_by_role("button", name="English").click()
    box = page.get_by_label("Search by name")
    box.fill("Шахм")
    expect(page.locator(".chat-list > li")).to_have_count(1)
    box.fill("nothing-like-it")
    expect(page.get_by_text("Nothing found.")).to_be_visible()
    teacher.screen("chat-filter-nothing-en")
