"""The call experience in the web client (issue #15, CA-2, CA-3, CA-9): a call started for chosen members
(the member picker), grid and speaker layouts with the active speaker highlighted (from the audio levels
each browser receives), the call's own chat beside the video (a sheet on a phone), the call minimised to a
floating tile while reading chats (it goes on: frames still decoded) and left from there; a broadcast whose
viewer only receives."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def world(api):
    org, admin = api.organization("Школа №45", "Казань")
    teacher = api.member(org, admin, "teacher", last_name="Петрова", first_name="Вера", birth_date="1985-03-02",
                         sex="female")
    other = api.member(org, admin, "teacher", last_name="Зуев", first_name="Игорь", birth_date="1975-07-08",
                       sex="male")
    chat = api.chat_once_members_known(org, admin, "Методобъединение", [teacher["user_id"], other["user_id"]])
    return {"org": org, "admin": admin, "teacher": teacher, "other": other, "chat": chat}


def stats(page) -> dict:
    return page.evaluate("window.sferaStats ? window.sferaStats() : null") or {}


def frames_grow(page, above: int = 10, timeout: float = 40) -> int:
    """Waits until the page has decoded more than `above` video frames; answers how many."""
    deadline = time.monotonic() + timeout
    seen = {}
    while time.monotonic() < deadline:
        seen = stats(page)
        if seen.get("inboundVideoFrames", 0) > above:
            return seen["inboundVideoFrames"]
        time.sleep(0.3)
    raise AssertionError(f"no video decoded past {above}: {seen}")


def start_from_chat(person, world, choose=None, broadcast=False) -> str:
    """The chat's 'call' dialog: everyone, chosen members (by name) or a broadcast; answers the call's id."""
    page = person.page
    person.sign_in_as(world["admin"], f"/chats/{world['chat']}")
    page.get_by_role("button", name="Позвонить").click()
    dialog = page.get_by_role("dialog", name="Новый звонок")
    expect(dialog).to_be_visible()
    if choose:
        dialog.get_by_label("Выбранных участников").check()
        dialog.get_by_role("button", name="Начать звонок").click()
        expect(dialog.get_by_text("Выберите хотя бы одного")).to_be_visible()  # nobody chosen yet
        for name in choose:
            dialog.get_by_label(name).check()
        person.screen("call-start-chosen")
        dialog.get_by_role("button", name="Начать звонок").click()
    elif broadcast:
        dialog.get_by_label("Трансляция для всего чата").check()
        expect(dialog).to_contain_text("показывают только вы и выбранные выступающие")
        person.screen("call-start-broadcast")
        dialog.get_by_role("button", name="Начать трансляцию").click()
    else:
        dialog.get_by_role("button", name="Начать звонок").click()
    expect(page).to_have_url(re.compile(r"/call/[0-9a-f-]{36}$"), timeout=15_000)
    return page.url.rsplit("/", 1)[1]


def test_chosen_members_layouts_speaker_call_chat_and_minimised_CA_2_CA_3(people, api, world):
    admin, teacher = people("exp-admin"), people("exp-teacher")
    a, b = admin.page, teacher.page
    call_id = start_from_chat(admin, world, choose=["Петрова Вера"])
    call = api.ok("GET", f"/calls/{call_id}", world["admin"]["access_token"])
    assert sorted(call["invited_user_ids"]) == sorted([world["admin"]["user_id"], world["teacher"]["user_id"]])  # CA-2
    refused = api.call("POST", f"/calls/{call_id}/join", world["other"]["access_token"])
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "call.not_invited", refused.text
    a.get_by_role("button", name="Войти в звонок").click()
    expect(a.get_by_role("toolbar")).to_be_visible()

    teacher.sign_in_as(world["teacher"], f"/call/{call_id}")
    b.get_by_role("button", name="Войти в звонок").click()
    expect(b.get_by_role("toolbar")).to_be_visible()
    frames_grow(a)
    frames_grow(b)

    # The active speaker: the fake microphone's beeps, heard through the received audio levels, ring the tile.
    teacher_tile = a.locator(f".tile-video[data-user='{world['teacher']['user_id']}']")
    expect(teacher_tile).to_have_attribute("data-speaking", "true", timeout=20_000)
    expect(teacher_tile).to_contain_text("говорит")
    assert a.evaluate("window.sferaSpeaker()") == world["teacher"]["user_id"]
    admin.screen("call-grid-speaking")

    # The speaker layout: one large tile (the speaker's), the toolbar at the bottom of a phone's screen.
    a.get_by_role("button", name="Крупно говорящего").click()
    expect(a.get_by_role("button", name="Крупно говорящего")).to_have_attribute("aria-pressed", "true")
    expect(a.locator(".tile-video--focus")).to_have_attribute("data-user", world["teacher"]["user_id"])
    toolbar = a.get_by_role("toolbar").bounding_box()
    assert toolbar and toolbar["y"] + toolbar["height"] <= 740 - 50, toolbar  # above the tab bar, on screen
    admin.screen("call-speaker-layout")

    # A screen shared is the large tile in either layout (the admin may share, CA-4).
    a.get_by_role("button", name="Показать экран").click()
    expect(a.get_by_role("button", name="Остановить показ")).to_be_visible()
    expect(b.locator(".tile-video--screen")).to_contain_text("Администраторова Анна · экран", timeout=20_000)
    screen_box, camera_box = (b.locator(".tile-video--screen").bounding_box(),
                              b.locator(".tile-video:not(.tile-video--screen)").first.bounding_box())
    assert screen_box and camera_box and screen_box["y"] < camera_box["y"], (screen_box, camera_box)  # first
    b.get_by_role("button", name="Крупно говорящего").click()
    expect(b.locator(".tile-video--focus")).to_have_class(re.compile("tile-video--screen"))
    teacher.screen("call-screen-large")
    b.get_by_role("button", name="Крупно говорящего").click()
    a.get_by_role("button", name="Остановить показ").click()
    expect(b.locator(".tile-video--screen")).to_have_count(0, timeout=20_000)

    # The call's own chat (CA-3): a sheet on the phone; a message from one shows live in the other's panel.
    a.get_by_role("button", name="Чат", exact=True).click()
    panel = a.get_by_role("complementary", name="Чат звонка")
    expect(panel).to_be_visible()
    panel.get_by_label("Сообщение").fill("Видно доску?")
    panel.get_by_role("button", name="Отправить").click()
    b.get_by_role("button", name="Чат", exact=True).click()
    b_panel = b.get_by_role("complementary", name="Чат звонка")
    expect(b_panel.locator(".message").filter(has_text="Видно доску?")).to_be_visible()
    teacher.screen("call-chat")
    b_panel.get_by_label("Сообщение").fill("Да, видно")
    b_panel.get_by_label("Сообщение").press("Enter")
    expect(panel.locator(".message").filter(has_text="Да, видно")).to_be_visible()

    # Minimised while reading chats: the call goes on in a floating tile, then back, then left from the tile.
    b_panel.get_by_role("link", name="Открыть в чатах").click()
    expect(b).to_have_url(f"/chats/{world['chat']}", timeout=15_000)
    dock = b.get_by_role("region", name=re.compile("Идёт звонок"))
    expect(dock).to_be_visible()
    expect(b.locator(".message").filter(has_text="Видно доску?")).to_be_visible()
    before = stats(b)["inboundVideoFrames"]
    frames_grow(b, above=before + 20)  # still receiving, away from the call page
    expect(dock.locator("video")).to_have_js_property("readyState", 4)
    teacher.screen("call-minimised")
    dock.get_by_role("link", name="Вернуться в звонок").click()
    expect(b).to_have_url(f"/call/{call_id}", timeout=15_000)
    expect(b.get_by_role("toolbar")).to_be_visible()  # the same call, not its check again
    expect(b.get_by_role("heading", name="Проверьте камеру и микрофон")).to_have_count(0)
    b.get_by_role("link", name="Открыть в чатах").click()
    dock.get_by_role("button", name="Выйти").click()
    expect(dock).to_have_count(0)
    expect(a.get_by_role("heading", name=re.compile("Участники"))).to_contain_text("1", timeout=20_000)
    assert b.evaluate("window.sferaStats()") is None


def test_a_broadcast_viewer_only_receives_CA_9(people, api, world):
    admin, teacher = people("bc-admin"), people("bc-viewer")
    a, b = admin.page, teacher.page
    call_id = start_from_chat(admin, world, broadcast=True)
    expect(a.get_by_text("трансляция", exact=True)).to_be_visible()
    a.get_by_role("button", name="Войти в звонок").click()  # the starter presents: camera and microphone
    expect(a.get_by_role("button", name="Выключить микрофон")).to_be_visible()

    teacher.sign_in_as(world["teacher"], f"/call/{call_id}")
    expect(b.get_by_role("heading", name="Трансляция")).to_be_visible()
    expect(b.locator("video.preview")).to_have_count(0)  # no camera asked for
    teacher.screen("broadcast-before")
    b.get_by_role("button", name="Смотреть трансляцию").click()
    expect(b.get_by_role("status").filter(has_text="Вы смотрите трансляцию")).to_be_visible()
    toolbar = b.get_by_role("toolbar")
    expect(toolbar).to_be_visible()
    for absent in ("Выключить микрофон", "Выключить камеру", "Показать экран", "Поднять руку"):
        expect(toolbar.get_by_role("button", name=absent)).to_have_count(0)
    frames_grow(b)
    seen = stats(b)
    assert seen["outboundVideoFrames"] == 0 and seen["outboundAudioPackets"] == 0, seen
    expect(a.locator(".participant", has_text="Петрова Вера")).to_contain_text("зритель")
    teacher.screen("broadcast-viewer")
    admin.screen("broadcast-presenter")

    # Ended while the viewer reads the chat (minimised): the floating tile says so instead of vanishing (CA-7).
    b.get_by_role("button", name="Чат", exact=True).click()
    b.get_by_role("link", name="Открыть в чатах").click()
    expect(b.get_by_role("region", name=re.compile("Идёт звонок"))).to_be_visible(timeout=15_000)
    a.once("dialog", lambda dialog: dialog.accept())
    a.get_by_role("button", name="Завершить для всех").click()
    ended = b.locator("[data-call-dock]")
    expect(ended.get_by_role("status")).to_have_text("Звонок завершён.", timeout=20_000)
    teacher.screen("call-ended-away")
    ended.get_by_role("button", name="Закрыть").click()
    expect(ended).to_have_count(0)
