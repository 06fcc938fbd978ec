"""Message search in the browser (issue #17): one person writes "контрольная работа в пятницу", the other finds it
by another word form ("контрольной") across their chats, sees the matched word marked, and opens the chat at that
message although it is older than the chat's first page; in a chat's header the search covers that chat only;
nothing found and a query without words say so, in Russian and in English; axe and screenshots at both sizes."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import expect

from tests.helpers import eventually

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def world(api):
    org, admin = api.organization("Гимназия №7", f"Поискград-{uuid.uuid4().hex[:6]}")
    teacher = api.member(org, admin, "teacher", last_name="Орлова", first_name="Анна", birth_date="1986-04-05",
                         sex="female")
    name = f"Пятые классы {uuid.uuid4().hex[:4]}"
    chat = api.chat_once_members_known(org, admin, name, [teacher["user_id"]])
    other = api.chat_once_members_known(org, admin, f"Родители {uuid.uuid4().hex[:4]}", [teacher["user_id"]])
    return {"org": org, "admin": admin, "teacher": teacher, "chat": chat, "name": name, "other": other}


def test_find_a_message_by_a_word_form_and_open_the_chat_at_it(people, api, world):
    admin = people("writer")
    admin.sign_in_as(world["admin"], f"/chats/{world['chat']}")
    a = admin.page
    expect(a.get_by_role("heading", name=world["name"])).to_be_visible()
    a.get_by_label("Сообщение").fill("контрольная работа в пятницу")
    a.get_by_label("Сообщение").press("Enter")
    expect(a.locator(".message--mine:not(.message--pending)", has_text="контрольная работа в пятницу")).to_be_visible()
    token = world["admin"]["access_token"]
    # Forty later messages: the found one is not on the chat's first page (30), the chat loads back to it.
    for n in range(40):
        api.ok("POST", f"/chats/{world['chat']}/messages", token, status=201, json={"text": f"Объявление {n}"})
    api.ok("POST", f"/chats/{world['other']}/messages", token, status=201, json={"text": "Контрольные тетради купить"})
    reader = world["teacher"]["access_token"]
    found = eventually(lambda: [h for h in api.ok("GET", "/messages/search", reader,
                                                  params={"q": "контрольной"})["items"]
                                if h["chat_id"] == world["chat"]], what="the message in the search")
    seq = found[0]["seq"]

    teacher = people("searcher")
    teacher.sign_in_as(world["teacher"], "/chats")
    b = teacher.page
    b.get_by_role("button", name="Поиск по сообщениям").click()
    sheet = b.get_by_role("dialog", name="Поиск по сообщениям")
    expect(sheet).to_be_visible()
    expect(sheet.get_by_label("Слова из сообщения")).to_be_focused()
    sheet.get_by_label("Слова из сообщения").press_sequentially("контрольной", delay=30)
    hit = sheet.locator(f"[data-found='{world['chat']}:{seq}']")
    expect(hit).to_contain_text(world["name"])
    expect(hit).to_contain_text("контрольная работа в пятницу")
    expect(hit.locator(".found-author")).not_to_be_empty()
    expect(hit.locator("mark")).to_have_text("контрольная")
    expect(sheet.locator(f"[data-found^='{world['other']}:']")).to_contain_text("Контрольные")  # across chats
    teacher.screen("message-search")
    sheet.get_by_role("button", name="Закрыть").focus()  # a modal: Tab goes round inside it
    b.keyboard.press("Shift+Tab")
    expect(sheet.locator(f"[data-found='{world['chat']}:{seq}']")).to_be_focused()

    hit.click()
    expect(b).to_have_url(f"/chats/{world['chat']}?seq={seq}")
    expect(sheet).to_have_count(0)
    message = b.locator(f".messages [data-seq='{seq}']")
    expect(message).to_be_in_viewport()
    expect(message).to_contain_text("контрольная работа в пятницу")
    expect(message).to_have_class(re.compile(r"\bmessage--found\b"))  # shown for a moment
    teacher.screen("message-search-opened")

    # In the chat's header: this chat only; a word nobody wrote; a query with no word at all (search.no_words).
    b.get_by_role("button", name="Поиск в этом чате").click()
    sheet = b.get_by_role("dialog", name="Поиск в этом чате")
    words = sheet.get_by_label("Слова из сообщения")
    words.press_sequentially("контрольн", delay=30)
    expect(sheet.locator("[data-found]")).to_have_count(1)
    expect(sheet.locator(f"[data-found^='{world['other']}:']")).to_have_count(0)
    words.fill("щщщщщ")
    expect(sheet.get_by_text("Сообщений с такими словами нет.")).to_be_visible()
    teacher.screen("message-search-nothing")
    words.fill("!!!")
    expect(sheet.get_by_role("alert")).to_contain_text("Введите слово для поиска")
    words.press("Escape")
    expect(sheet).to_have_count(0)
    expect(b.get_by_role("button", name="Поиск в этом чате")).to_be_focused()

    # English.
    b.get_by_role("button", name="English").click()
    b.get_by_role("button", name="Search this chat").click()
    sheet = b.get_by_role("dialog", name="Search this chat")
    sheet.get_by_label("Words of the message").press_sequentially("пятницы", delay=30)
    expect(sheet.locator(f"[data-found='{world['chat']}:{seq}'] mark")).to_have_text("пятницу")
    teacher.screen("message-search-en")
    sheet.get_by_role("button", name="Close").click()
    b.get_by_role("button", name="Русский").click()
    expect(b.get_by_role("button", name="Поиск в этом чате")).to_be_visible()
