"""Chats in the browser (issue #15, CH-3..CH-6): two people in two browser contexts chat live
(a message appears in the other without reload, read marks move), a reconnect catches up the
messages posted meanwhile once each and sends what was typed offline, polls, edits, deletes,
reports, attachments, and "write to the administration" answered as the school."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def world(api):
    org, admin = api.organization("Лицей №3", "Казань")
    teacher = api.member(org, admin, "teacher", last_name="Петрова", first_name="Ольга", birth_date="1985-03-04",
                         sex="female")
    chat = api.chat_once_members_known(org, admin, "Методобъединение", [teacher["user_id"]])
    return {"org": org, "admin": admin, "teacher": teacher, "chat": chat}


class Socket:
    """The page's realtime WebSocket through Playwright, so a test can drop it and keep it down."""

    def __init__(self, page):
        self.routes = []
        self.down = False
        page.route_web_socket(re.compile(r".*/api/v1/realtime.*"), self.handle)

    def handle(self, ws) -> None:
        if self.down:
            ws.close()
            return
        ws.connect_to_server()
        self.routes.append(ws)

    def drop(self) -> None:
        self.down = True
        for ws in self.routes:
            ws.close()
        self.routes.clear()


def test_two_people_chat_live_with_read_marks_and_a_reconnect_CH_4(people, api, world):
    admin, teacher = people("admin"), people("teacher")
    socket = Socket(admin.page)
    admin.sign_in_as(world["admin"], "/chats")
    a = admin.page
    row = a.locator(f"[data-chat='{world['chat']}']")
    expect(row).to_contain_text("Методобъединение")
    admin.screen("chats-list")
    teacher.sign_in_as(world["teacher"], f"/chats/{world['chat']}")
    b = teacher.page
    expect(b.get_by_role("heading", name="Методобъединение")).to_be_visible()

    # A message appears in the other browser without a reload; the reader's mark reaches the writer.
    row.get_by_role("link").click()
    a.get_by_label("Сообщение").fill("Добрый день, коллеги")
    a.get_by_label("Сообщение").press("Enter")
    expect(b.locator(".message-text", has_text="Добрый день, коллеги")).to_be_visible()
    mine = a.locator(".message--mine", has_text="Добрый день, коллеги")
    expect(mine.locator(".message-status")).to_have_attribute("data-read", "yes")
    expect(mine.locator(".message-status")).to_contain_text("прочитано")
    admin.screen("chat")

    # Offline: the socket drops and stays down, the API is unreachable. What is typed waits, visibly.
    seen = api.ok("POST", f"/chats/{world['chat']}/messages", world["teacher"]["access_token"], status=201,
                  json={"text": "До связи"})
    expect(a.locator(".message-text", has_text="До связи")).to_be_visible()
    socket.drop()
    admin.context.set_offline(True)
    expect(a.get_by_role("status").filter(has_text="Нет связи")).to_be_visible()
    a.get_by_label("Сообщение").fill("Напишу, когда появится связь")
    a.get_by_role("button", name="Отправить").click()
    expect(a.locator(".message--pending")).to_contain_text("Ждёт связи")
    for n in (1, 2, 3):
        api.ok("POST", f"/chats/{world['chat']}/messages", world["teacher"]["access_token"], status=201,
               json={"text": f"Пока вас не было {n}"})
    api.ok("PUT", f"/chats/{world['chat']}/messages/{seen['seq']}", world["teacher"]["access_token"],
           json={"text": "До связи, исправлено"})  # an edit missed while offline
    admin.screen("chat-offline")

    # Back online: the queued message goes out, the missed ones arrive, each once, in order.
    socket.down = False
    admin.context.set_offline(False)
    expect(b.locator(".message-text", has_text="Напишу, когда появится связь")).to_be_visible()
    expect(a.locator(".message--pending")).to_have_count(0)
    for n in (1, 2, 3):
        expect(a.locator(".message-text", has_text=f"Пока вас не было {n}")).to_have_count(1)
    texts = a.locator(".message-text").all_inner_texts()
    missed = [t for t in texts if t.startswith("Пока вас не было")]
    assert missed == ["Пока вас не было 1", "Пока вас не было 2", "Пока вас не было 3"], texts
    expect(a.get_by_role("status").filter(has_text="Нет связи")).to_have_count(0)
    expect(a.locator(f".message[data-seq='{seen['seq']}'] .message-text")).to_have_text("До связи, исправлено")

    # The list: the teacher's unread count and the last message, live.
    b.get_by_role("link", name="К списку чатов").click()
    teacher_row = b.locator(f"[data-chat='{world['chat']}']")
    expect(teacher_row).to_contain_text("Напишу, когда появится связь")
    api.ok("POST", f"/chats/{world['chat']}/messages", world["admin"]["access_token"], status=201,
           json={"text": "Последнее на сегодня"})
    expect(teacher_row).to_contain_text("Последнее на сегодня")
    expect(teacher_row.locator("[data-unread]")).to_have_text("1")
    teacher.screen("chats-list-unread")


def test_edit_delete_poll_report_and_its_resolution_CH_4_CH_6(people, api, world):
    admin, teacher = people("admin-2"), people("teacher-2")
    admin.sign_in_as(world["admin"], f"/chats/{world['chat']}")
    teacher.sign_in_as(world["teacher"], f"/chats/{world['chat']}")
    a, b = admin.page, teacher.page
    a.get_by_label("Сообщение").fill("Собрание в 15:00")
    a.get_by_role("button", name="Отправить").click()
    message = a.locator(".message--mine", has_text="Собрание в 15:00").last
    expect(message).to_have_attribute("data-seq", re.compile(r"\d+"))
    message.get_by_role("button", name=re.compile("Действия")).click()
    message.get_by_role("button", name="Изменить").click()
    a.get_by_label("Сообщение").fill("Собрание в 16:00")
    a.get_by_role("button", name="Сохранить").click()
    expect(b.locator(".message-text", has_text="Собрание в 16:00")).to_be_visible()  # the edit, live
    expect(b.locator(".message", has_text="Собрание в 16:00")).to_contain_text("изменено")
    # on a phone the chat's title is whole beside its search and call buttons (it was cut to 'Мето…'); the call
    # button is its icon there and keeps its name
    b.set_viewport_size({"width": 360, "height": 740})
    title = b.locator(".chat-head h1")
    expect(title).to_have_text("Методобъединение")
    assert title.evaluate("el => el.scrollWidth <= el.clientWidth + 1 && el.scrollHeight <= el.clientHeight + 1")
    expect(b.get_by_role("button", name="Позвонить")).to_be_visible()
    b.set_viewport_size({"width": 1366, "height": 768})

    # A poll: created by one, voted by the other, the results live in both; closed by its author.
    a.get_by_role("button", name="Опрос", exact=True).click()
    a.get_by_label("Вопрос").fill("Когда удобно?")
    a.get_by_label("Вариант 1").fill("Утром")
    a.get_by_label("Вариант 2").fill("Вечером")
    a.get_by_role("button", name="Создать опрос").click()
    poll_b = b.locator(".poll", has_text="Когда удобно?")
    poll_b.get_by_label("Вечером").check()
    poll_b.get_by_role("button", name="Голосовать").click()
    poll_a = a.locator(".poll", has_text="Когда удобно?")
    expect(poll_a).to_contain_text("Проголосовал 1 человек")
    admin.screen("chat-poll")
    poll_a.get_by_role("button", name="Завершить опрос").click()
    expect(poll_b).to_contain_text("завершён")

    # Reporting someone else's message (CH-6) lands in the school's queue.
    theirs = b.locator(".message", has_text="Собрание в 16:00")
    theirs.get_by_role("button", name=re.compile("Действия")).click()
    theirs.get_by_role("button", name="Пожаловаться").click()
    b.get_by_label("Причина жалобы").fill("Не по теме")
    b.get_by_role("button", name="Отправить жалобу").click()
    expect(b.get_by_role("status").filter(has_text="Жалоба отправлена")).to_be_visible()
    reports = api.ok("GET", f"/organizations/{world['org']}/reports", world["admin"]["access_token"])
    assert any(r["reason"] == "Не по теме" and r["text"] == "Собрание в 16:00" for r in reports)

    # The school's admins see the queue and resolve it; a resolved report leaves the queue.
    queue = people("admin-queue")
    queue.sign_in_as(world["admin"], "/chats")
    queue.page.get_by_role("link", name="Жалобы").click()
    item = queue.page.locator(".report-item", has_text="Не по теме")
    expect(item).to_contain_text("Собрание в 16:00")
    expect(item).to_contain_text("Петрова Ольга")
    queue.screen("chat-reports")
    item.get_by_role("button", name="Оставить сообщение").click()
    expect(queue.page.get_by_role("status").filter(has_text="Жалоба отклонена")).to_be_visible()
    expect(queue.page.locator(".report-item", has_text="Не по теме")).to_have_count(0)
    assert not api.ok("GET", f"/organizations/{world['org']}/reports", world["admin"]["access_token"])

    # Deleting: the trace stays, in both.
    a.on("dialog", lambda d: d.accept())
    message = a.locator(".message--mine", has_text="Собрание в 16:00")
    message.get_by_role("button", name=re.compile("Действия")).click()
    message.get_by_role("button", name="Удалить").click()
    expect(b.locator(".message-deleted").first).to_have_text("Сообщение удалено")
    teacher.screen("chat-deleted")


def test_attachments_upload_and_play_in_the_other_browser_CH_4(people, api, world, tmp_path):
    admin, teacher = people("admin-3"), people("teacher-3")
    admin.sign_in_as(world["admin"], f"/chats/{world['chat']}")
    teacher.sign_in_as(world["teacher"], f"/chats/{world['chat']}")
    png = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                        "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201a5f6d2b50000000049454e44ae426082")
    (tmp_path / "доска.png").write_bytes(png)
    (tmp_path / "план.txt").write_text("план урока\n")
    admin.page.locator("input[type=file]").set_input_files([str(tmp_path / "доска.png"), str(tmp_path / "план.txt")])
    b = teacher.page
    expect(b.locator(".attachment[data-kind=photo] img")).to_be_visible()
    expect(b.locator(".attachment[data-kind=file]")).to_contain_text("план.txt")
    assert b.locator(".attachment[data-kind=photo] img").evaluate("img => img.naturalWidth") == 1
    teacher.screen("chat-attachments")

    # The API's refusals are explained: an executable is no attachment, whatever it is called.
    (tmp_path / "setup.exe").write_bytes(b"MZ" + bytes(200))
    admin.page.locator("input[type=file]").set_input_files(str(tmp_path / "setup.exe"))
    expect(admin.page.get_by_role("alert")).to_contain_text("Такой тип файла нельзя прикрепить")
    expect(admin.page.locator("progress")).to_have_count(0)
    admin.screen("chat-attachment-refused")


def test_write_to_the_administration_answered_as_the_school_CH_5(people, api, world):
    seventh = api.ok("POST", f"/organizations/{world['org']}/classes", world["admin"]["access_token"], status=201,
                     json={"name": "7А", "start_year": 2023, "end_year": 2030})["class_id"]
    pupil_session = api.member(world["org"], world["admin"], "student", seventh, last_name="Ершов", first_name="Гоша",
                               birth_date="2013-01-02", sex="male")
    pupil, admin = people("pupil"), people("admin-4")
    pupil.sign_in_as(pupil_session, "/chats")
    p = pupil.page
    p.get_by_role("button", name="Написать: Лицей №3").click()
    expect(p).to_have_url(re.compile(r"/chats/[0-9a-f-]{36}$"))
    thread = p.url.rsplit("/", 1)[1]
    p.get_by_label("Сообщение").fill("Где взять расписание?")
    p.get_by_role("button", name="Отправить").click()
    admin.sign_in_as(world["admin"], "/chats")
    a = admin.page
    a.locator(f"[data-chat='{thread}']").get_by_role("link").click()
    expect(a.locator(".message-text", has_text="Где взять расписание?")).to_be_visible()
    a.get_by_label("Ответить от имени школы").check()
    a.get_by_label("Сообщение").fill("На сайте школы")
    a.get_by_role("button", name="Отправить").click()
    answer = p.locator(".message", has_text="На сайте школы")
    expect(answer.locator(".message-author")).to_have_text("Школа")  # the pupil never sees which admin
    pupil.screen("chat-inbox-pupil")
    admin.screen("chat-inbox-admin")


def test_history_pages_back_invite_link_dialog_and_a_voice_message_CH_1_CH_3_CH_4(people, api, world):
    newcomer = api.member(world["org"], world["admin"], "teacher", last_name="Лебедева", first_name="Нина",
                          birth_date="1990-07-08", sex="female")
    body = {"organization_id": world["org"], "name": "Кружок", "member_ids": [world["teacher"]["user_id"]]}
    chat = api.ok("POST", "/chats", world["admin"]["access_token"], status=201, json=body)["chat_id"]
    for n in range(1, 46):
        api.ok("POST", f"/chats/{chat}/messages", world["teacher"]["access_token"], status=201, json={"text": f"№{n}"})
    api.ok("PUT", f"/chats/{chat}/read", world["admin"]["access_token"], json={"seq": 39})  # №1..№40 read
    admin, teacher = people("admin-5"), people("teacher-5")
    admin.sign_in_as(world["admin"], f"/chats/{chat}")
    a = admin.page
    # The newest page first, with the divider before the first unread; earlier pages by the before= cursor.
    expect(a.locator(".message-text", has_text="№45")).to_be_visible()
    expect(a.locator(".divider + .message .message-text")).to_have_text("№41")
    expect(a.locator(".message-text", has_text=re.compile(r"^№1$"))).to_have_count(0)
    a.get_by_role("button", name="Показать более ранние").click()
    expect(a.locator(".message-text", has_text=re.compile(r"^№1$"))).to_have_count(1)
    assert len(a.locator(".message-text").all_inner_texts()) == 45  # each once
    expect(a.get_by_role("button", name="Показать более ранние")).to_have_count(0)

    # CH-3: an invite link with its QR; the newcomer joins by it and lands in the chat.
    a.get_by_text("Участники: 2").click()
    a.get_by_role("button", name="Ссылка-приглашение").click()
    link = a.locator(".invite-url a").inner_text()
    expect(a.get_by_role("img", name="QR-код приглашения в чат")).to_be_visible()
    admin.screen("chat-info")
    guest = people("newcomer")
    guest.sign_in_as(newcomer, "/" + link.split("://", 1)[1].split("/", 1)[1])
    guest.page.get_by_role("button", name="Вступить в чат").click()
    guest.page.get_by_role("link", name="Открыть чат").click()
    expect(guest.page.get_by_role("heading", name="Кружок")).to_be_visible()

    # CH-1: a dialog with someone one shares a chat with, from the members.
    a.get_by_role("button", name="Написать Петрова Ольга").click()
    expect(a.get_by_role("heading", name="Петрова Ольга")).to_be_visible()
    dialog = a.url.rsplit("/", 1)[1]

    # A voice message recorded in one browser (the fake microphone) plays in the other.
    teacher.sign_in_as(world["teacher"], f"/chats/{dialog}")
    b = teacher.page
    b.get_by_role("button", name="Голосовое").click()
    b.wait_for_timeout(1500)
    b.get_by_role("button", name="Остановить и отправить").click()
    voice = a.locator(".attachment[data-kind=voice] audio")
    expect(voice).to_be_visible()
    a.wait_for_function("() => { const v = document.querySelector('.attachment[data-kind=voice] audio');"
                        " return v && v.readyState >= 1 && v.duration > 0.5 }")
    admin.screen("chat-voice")
