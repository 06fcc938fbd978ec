"""The teacher's desktop as the teacher's home (SC-13): a quick switch between today's lessons and the main
chats, the classes one teaches with a one-click call (in the class's chat, CA-2), the recent school, class
and personal chats with their kinds; keyboard arrows move between the two tabs."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.helpers import eventually

pytestmark = pytest.mark.e2e


def test_the_teachers_desk_switches_lessons_and_chats_and_calls_a_class_in_one_click_SC_13(people, api):
    org, admin = api.organization("Гимназия №5", "Казань")
    klass = api.ok("POST", f"/organizations/{org}/classes", admin["access_token"], status=201,
                   json={"name": "7Б", "start_year": 2025, "end_year": 2030})["class_id"]
    teacher = api.member(org, admin, "teacher", last_name="Петрова", first_name="Анна", birth_date="1982-02-02",
                         sex="female")
    api.member(org, admin, "student", klass, last_name="Зайцев", first_name="Игорь", birth_date="2014-03-03",
               sex="male")
    api.ok("PUT", f"/organizations/{org}/classes/{klass}/teaching", teacher["access_token"],
           json={"subjects": ["Физика"]})

    def class_chat():
        return next((i["chat"] for i in api.ok("GET", "/chats", teacher["access_token"])
                     if i["chat"]["kind"] == "class" and i["chat"]["class_id"] == klass), None)

    chat = eventually(class_chat, what="the class's chat with its teacher")

    me = people("desk-teacher")
    me.sign_in_as(teacher, "/")
    page = me.page
    desk = page.locator("[data-home=teacher]")
    lessons_tab, chats_tab = desk.get_by_role("tab", name="Уроки"), desk.get_by_role("tab", name="Чаты")
    expect(lessons_tab).to_have_attribute("aria-selected", "true")
    expect(desk.get_by_role("tabpanel", name="Уроки")).to_contain_text("Сегодня уроков нет.")
    row = desk.locator(".desk-class", has_text="7Б")
    expect(row).to_contain_text("Физика")
    me.screen("desk-lessons")

    # The quick switch: the chats, by click and by the arrow keys.
    chats_tab.click()
    chats = desk.get_by_role("tabpanel", name="Чаты")
    expect(chats).to_be_visible()
    expect(chats.get_by_role("link", name=re.compile("7Б"))).to_contain_text("чат класса")
    expect(chats.get_by_role("link", name=re.compile("Гимназия №5"))).to_contain_text("чат школы")
    me.screen("desk-chats")
    chats_tab.press("ArrowLeft")
    expect(lessons_tab).to_be_focused()
    expect(lessons_tab).to_have_attribute("aria-selected", "true")

    # One click calls the class: a call in its class chat, its page open.
    row.get_by_role("button", name="Позвонить классу 7Б").click()
    expect(page).to_have_url(re.compile(r"/call/[0-9a-f-]{36}$"))
    call = api.ok("GET", f"/calls/{page.url.rsplit('/', 1)[1]}", teacher["access_token"])
    assert (call["chat_id"], call["started_by"]) == (chat["chat_id"], teacher["user_id"])
    expect(page.get_by_role("heading", name="Проверьте камеру и микрофон")).to_be_visible()
