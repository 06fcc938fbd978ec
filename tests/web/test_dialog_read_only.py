"""A dialog outlives the right to write in it (CH-1): a teacher taken out of the school shares no chat with its
pupils any more, so their old dialog stays to read (its history is the pupil's) but takes no new message or call.
The pupil opening it sees why, in place of the box to write in, and no call button. Russian and English; axe and
screenshots at 360 px and desktop."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.helpers import eventually

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def dialog(api):
    """A teacher and a pupil of one school wrote to each other; then the admin took the teacher out of the school."""
    org, admin = api.organization("Школа «Переписка»", "Казань")
    klass = api.ok("POST", f"/organizations/{org}/classes", admin["access_token"], status=201,
                   json={"name": "7В", "start_year": 2022, "end_year": 2030})["class_id"]
    pupil = api.member(org, admin, "student", klass, last_name="Пишущая", first_name="Вера", birth_date="2012-04-04",
                       sex="female")
    teacher = api.member(org, admin, "teacher", last_name="Ушедший", first_name="Олег", birth_date="1980-05-05",
                         sex="male")
    chat = eventually(lambda: api.call("POST", "/direct-chats", teacher["access_token"], json={
        "user_id": pupil["user_id"]}).json().get("chat_id"), what="messaging to learn both joined the school")
    api.ok("POST", f"/chats/{chat}/messages", teacher["access_token"], status=201, json={"text": "Жду реферат"})
    api.ok("POST", f"/chats/{chat}/messages", pupil["access_token"], status=201, json={"text": "Пришлю завтра"})
    api.ok("DELETE", f"/organizations/{org}/members/{teacher['user_id']}", admin["access_token"], status=204)
    eventually(lambda: api.ok("GET", f"/chats/{chat}", pupil["access_token"])["read_only_reason"]
               == "direct.no_shared_chat", what="messaging to take the teacher out of the school's chats")
    return {"chat": chat, "pupil": pupil, "teacher": teacher}


def test_the_pupil_reads_the_old_dialog_but_cannot_write_or_call_in_it_CH_1(people, dialog):
    pupil = people("pupil-dialog")
    pupil.sign_in_as(dialog["pupil"], f"/chats/{dialog['chat']}")
    page = pupil.page
    expect(page.locator(".message-text").first).to_be_visible()
    expect(page.locator(".message-text")).to_have_text(["Жду реферат", "Пришлю завтра"])
    notice = page.locator(".composer.read-only")
    expect(notice).to_contain_text("Написать лично можно тому, с кем у вас есть общий чат.")
    expect(notice).to_contain_text("новые сообщения и звонки в ней недоступны")
    expect(page.locator("#composer-text")).to_have_count(0)
    expect(page.locator(".start-call-label")).to_have_count(0)
    pupil.screen("chat-dialog-read-only")
    page.get_by_role("button", name="English").click()
    expect(notice).to_contain_text("You can message someone you share a chat with.")
    expect(notice).to_contain_text("new messages and calls in it are off")
    pupil.screen("chat-dialog-read-only-en")
