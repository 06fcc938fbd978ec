"""Calls in the web client (issue #15, CA-1, CA-4, CA-10): a call started from a chat, joined by
a second person from the chat's link, camera and microphone checked before joining, media both
ways (each browser decodes the other's camera: framesDecoded > 0), screen sharing refused and
explained, then allowed by the call's admin, a raised hand lowered and a microphone muted by
the admin (CA-3), breakout rooms and the call back (CA-5), leave, join again, removed by the
admin and refused when coming back."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def world(api):
    org, admin = api.organization("Школа №44", "Казань")
    teacher = api.member(org, admin, "teacher", last_name="Сидоров", first_name="Олег", birth_date="1979-05-06",
                         sex="male")
    chat = api.chat_once_members_known(org, admin, "Педсовет", [teacher["user_id"]])
    return {"org": org, "admin": admin, "teacher": teacher, "chat": chat}


def decoded(page) -> dict:
    stats = {}
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        stats = page.evaluate("window.sferaStats ? window.sferaStats() : null") or {}
        if stats.get("inboundVideoFrames", 0) > 10 and stats.get("outboundVideoFrames", 0) > 0:
            return stats
        time.sleep(0.3)
    raise AssertionError(f"no video decoded: {stats}")


def test_a_call_from_a_chat_media_both_ways_screen_refused_then_allowed_CA_1_CA_4_CA_10(people, api, world):
    admin, teacher = people("call-admin"), people("call-teacher")
    admin.sign_in_as(world["admin"], f"/chats/{world['chat']}")
    a = admin.page
    a.get_by_role("button", name="Позвонить").click()
    a.get_by_role("button", name="Начать звонок").click()  # everyone in the chat: the dialog's default
    expect(a).to_have_url(re.compile(r"/call/[0-9a-f-]{36}$"))
    call_id = a.url.rsplit("/", 1)[1]
    expect(a.get_by_role("heading", name="Проверьте камеру и микрофон")).to_be_visible()  # CA-10
    expect(a.locator("video.preview")).to_have_js_property("readyState", 4)
    admin.screen("call-check")
    a.get_by_role("button", name="Войти в звонок").click()
    expect(a.get_by_role("toolbar")).to_be_visible()

    # The other person finds the call in the chat and joins from its link.
    teacher.sign_in_as(world["teacher"], f"/chats/{world['chat']}")
    b = teacher.page
    b.get_by_role("link", name="Присоединиться к звонку").click()
    expect(b).to_have_url(f"/call/{call_id}")
    b.get_by_role("button", name="Войти в звонок").click()
    expect(b.get_by_role("toolbar")).to_be_visible()

    # Media both ways: each decodes the other's camera.
    for page in (a, b):
        stats = decoded(page)
        assert stats["inboundVideoFrames"] > 0 and stats["outboundAudioPackets"] > 0, stats
    expect(b.locator(".tile-caption")).to_contain_text(["Администраторова Анна · камера"])

    # CA-10 in the call: the settings change the microphone without leaving; the new one is what is sent, and
    # the other person keeps receiving sound.
    b.get_by_role("button", name="Настройки").click()
    settings = b.get_by_role("dialog", name="Камера и микрофон")
    microphone = settings.get_by_label("Микрофон")
    options = microphone.locator("option")
    assert options.count() >= 2, options.all_inner_texts()  # Chromium's fake devices: several microphones
    before = b.evaluate("window.sferaSending()")["audio"]
    other = next(o for o in options.all_inner_texts() if o != before)
    microphone.select_option(label=other)
    deadline = time.monotonic() + 15
    while b.evaluate("window.sferaSending()")["audio"] != other and time.monotonic() < deadline:
        time.sleep(0.2)
    assert b.evaluate("window.sferaSending()")["audio"] == other
    teacher.screen("call-settings")
    settings.get_by_role("button", name="Закрыть").click()
    heard = a.evaluate("window.sferaStats()")["inboundAudioPackets"]
    deadline = time.monotonic() + 15
    while a.evaluate("window.sferaStats()")["inboundAudioPackets"] <= heard + 20 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert a.evaluate("window.sferaStats()")["inboundAudioPackets"] > heard + 20
    expect(a.get_by_role("heading", name=re.compile("Участники"))).to_contain_text("2")
    teacher.screen("call-in")

    # CA-4: screen sharing is refused and said why; the admin allows it and the participant is told.
    b.get_by_role("button", name="Показать экран").click()
    expect(b.locator("[data-notice]")).to_contain_text("Показ экрана сейчас не разрешён")
    teacher.screen("call-screen-refused")
    a.get_by_role("button", name="Разрешить показ экрана всем").click()
    expect(b.locator("[data-notice]")).to_contain_text("Показ экрана разрешён")

    # Raise the hand: the admin sees it and lowers it; the admin mutes the participant, who is told (CA-3).
    b.get_by_role("button", name="Поднять руку").click()
    teacher_row = a.locator(".participant", has_text="Сидоров Олег")
    expect(teacher_row).to_contain_text("поднял(а) руку")
    admin.screen("call-admin")
    a.get_by_role("button", name="Опустить руку Сидоров Олег").click()
    expect(teacher_row).not_to_contain_text("поднял(а) руку")
    a.get_by_role("button", name="Выключить микрофон Сидоров Олег").click()
    expect(b.locator("[data-notice]")).to_contain_text("Администратор звонка выключил ваш микрофон")
    expect(b.get_by_role("button", name="Включить микрофон")).to_be_visible()
    expect(teacher_row).to_contain_text("микрофон выключен")

    # CA-5: breakout rooms at random, then everyone called back; the participant is told each time.
    a.get_by_label("Комнат").fill("1")
    a.get_by_role("button", name="Разослать по комнатам").click()
    expect(b.locator("[data-notice]")).to_contain_text("Вы в комнате")
    expect(teacher_row).to_contain_text("комната 1")
    admin.screen("call-breakouts")
    a.get_by_role("button", name="Вернуть всех в общий зал").click()
    expect(b.locator("[data-notice]")).to_contain_text("Вы снова в общем зале")

    b.get_by_role("button", name="Выйти").click()
    expect(b.get_by_role("status").filter(has_text="Вы вышли из звонка")).to_be_visible()
    assert b.evaluate("window.sferaState.errors") == ["call.screen_not_allowed"]

    # Back in, then removed by the admin.
    b.get_by_role("button", name="Войти снова").click()
    b.get_by_role("button", name="Войти в звонок").click()
    expect(b.get_by_role("toolbar")).to_be_visible()
    a.get_by_role("button", name="Удалить из звонка Сидоров Олег").click()
    expect(b.get_by_role("status").filter(has_text="Вас удалили из звонка")).to_be_visible()

    # The call's link opened directly is the client's call view (the gateway's bare page is gone).
    teacher.open(f"/call/{call_id}")
    expect(b.get_by_role("alert").filter(has_text="удалили")).to_be_visible()  # call.removed, explained at once
    expect(b.get_by_role("heading", name="Проверьте камеру и микрофон")).to_have_count(0)  # no lobby, no people

    # Ended: the chat's message no longer offers to join, it says the call is over; to the person removed from
    # it, that they were removed (they read the call no more, its end included: CA-3).
    api.ok("POST", f"/calls/{call_id}/end", world["admin"]["access_token"])
    teacher.open(f"/chats/{world['chat']}")
    expect(b.locator("[data-call-removed]").last).to_have_text("Вас удалили из звонка.")
    expect(b.get_by_role("link", name="Присоединиться к звонку")).to_have_count(0)
    admin.open(f"/chats/{world['chat']}")
    expect(a.locator("[data-call-ended]").last).to_have_text("Звонок завершён.")
    expect(a.get_by_role("link", name="Присоединиться к звонку")).to_have_count(0)
