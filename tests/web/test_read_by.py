"""Who has read in the web client (CH-4): the writer's own message says "read by 1" the moment the other person
reads it (live, no reload), and the count opens the list of who read it. axe clean, screenshots."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def world(api):
    org, admin = api.organization("Гимназия №5", "Казань")
    teacher = api.member(org, admin, "teacher", last_name="Читалкина", first_name="Нина", birth_date="1980-01-02",
                         sex="female")
    chat = api.chat_once_members_known(org, admin, "Завучи", [teacher["user_id"]])
    return {"admin": admin, "teacher": teacher, "chat": chat}


def test_the_writer_sees_read_by_1_appear_live_and_who_read_it_CH_4(people, world):
    writer, reader = people("read-by-writer"), people("read-by-reader")
    writer.sign_in_as(world["admin"], f"/chats/{world['chat']}")
    w = writer.page
    w.get_by_label("Сообщение").fill("Педсовет в четверг")
    w.get_by_label("Сообщение").press("Enter")
    mine = w.locator(".message--mine", has_text="Педсовет в четверг")
    expect(mine.locator(".message-status")).to_contain_text("отправлено")  # nobody has read it yet

    reader.sign_in_as(world["teacher"], f"/chats/{world['chat']}")  # opening the chat reads it
    expect(reader.page.locator(".message-text", has_text="Педсовет в четверг")).to_be_visible()
    read_by = mine.get_by_role("button", name="прочитано: 1")
    expect(read_by).to_be_visible()  # live: the writer's page was not reloaded
    read_by.click()
    expect(read_by).to_have_attribute("aria-expanded", "true")
    expect(mine.get_by_role("list", name="Прочитали")).to_contain_text("Читалкина Нина")
    writer.screen("chat-read-by")
