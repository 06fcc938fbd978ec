"""A lesson in the browser (issue #15's "done", EJ-5, SC-13, CA-4, CA-5, CA-6, CA-7): the journal's teacher
starts today's remote lesson from the teacher's desktop, two pupils join it from their home's "join"; media
both ways (each browser decodes the others' cameras); a pupil's screen share refused, then granted by the
teacher and decoded by the teacher; breakout rooms at random, a pupil moved by hand into the other's room
(they see each other there), everyone called back; recording started (everyone sees it records) and stopped,
the video lands in the lesson's chat and plays there; the teacher ends the lesson for all.
One platform, one browser, three contexts."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone

import pytest
from playwright.sync_api import expect

from tests.e2e.test_ejournal import link
from tests.e2e.test_rules_school_calls import journal, lesson_record, push  # noqa: F401  (the simulator's school)
from tests.helpers import eventually

pytestmark = pytest.mark.e2e


def wait_for(page, script: str, what: str, timeout: float = 40):
    """Poll a page's expression until it is truthy; its value."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = page.evaluate(script)
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"{what}: {value!r}")


def decoded(page, what: str) -> dict:
    return wait_for(page, """async () => { const s = window.sferaStats && await window.sferaStats();
        return s && s.inboundVideoFrames > 10 && s.outboundVideoFrames > 0 ? s : null }""", what)


def test_a_lesson_started_from_the_desk_joined_from_home_rooms_screen_and_recording(people, api, journal):  # noqa: F811
    subject = journal["a"][0]
    teacher = link(api, journal, journal["a"][1], api.person("Учителева", "Нина", "1980-03-04", "female"))
    pupils = [link(api, journal, journal["pupils"][0], api.person("Хасанов", "Тимур", "2013-04-05", "male")),
              link(api, journal, journal["pupils"][1], api.person("Гарипова", "Алсу", "2013-06-07", "female"))]
    push(journal, [lesson_record(journal, 31, journal["a"], datetime.now(timezone.utc) - timedelta(minutes=5), True)])
    eventually(lambda: any(x["actions"] == ["start"] for x in api.ok("GET", "/me/lessons", teacher["access_token"])),
               what="the published lesson in the teacher's timetable")

    # SC-13: the teacher's desktop shows today's lesson; one click starts its call.
    t = people("lesson-teacher")
    t.sign_in_as(teacher, "/")
    desk = t.page.locator("[data-home=teacher]")
    expect(desk.get_by_role("tab", name="Уроки")).to_have_attribute("aria-selected", "true")
    lesson = desk.locator("[data-lesson='rules-lesson-31']")
    expect(lesson).to_contain_text(subject)
    t.screen("lesson-desk")
    lesson.get_by_role("button", name=re.compile("^Начать урок")).click()
    expect(t.page).to_have_url(re.compile(r"/call/[0-9a-f-]{36}$"))
    call_id = t.page.url.rsplit("/", 1)[1]
    t.page.get_by_role("button", name="Войти в звонок").click()
    expect(t.page.get_by_role("toolbar")).to_be_visible()

    # EJ-5: each pupil's home shows "join" on the lesson under way; it opens the call.
    kids = [people("lesson-pupil-1"), people("lesson-pupil-2")]
    for n, (kid, session) in enumerate(zip(kids, pupils, strict=True)):
        kid.sign_in_as(session, "/")
        today = kid.page.locator("[data-home=lessons]")
        expect(today.locator("[data-lesson='rules-lesson-31']")).to_contain_text("идёт")
        if n == 0:
            kid.screen("lesson-pupil-home")
        today.get_by_role("link", name=re.compile("^Присоединиться")).click()
        expect(kid.page).to_have_url(f"/call/{call_id}")
        kid.page.get_by_role("button", name="Войти в звонок").click()
        expect(kid.page.get_by_role("toolbar")).to_be_visible()

    # Media both ways: every browser decodes the others' cameras.
    ids = [teacher["user_id"], *(p["user_id"] for p in pupils)]
    for person in (t, *kids):
        decoded(person.page, f"{person.name} decodes video")
    for person in (t, *kids):
        for other in ids:
            if other != person.session()["userId"]:
                wait_for(person.page, f"""() => {{ const s = window.sferaState.slots;
                    return Object.values(s).some((v) => v && v.user_id === '{other}' && v.source === 'camera') }}""",
                         f"{person.name} is shown {other}'s camera")

    # CA-4: a pupil's screen is refused, then the teacher grants it, and the teacher decodes the screen.
    a, b = kids[0].page, kids[1].page
    a.get_by_role("button", name="Показать экран").click()
    expect(a.locator("[data-notice]")).to_contain_text("Показ экрана сейчас не разрешён")
    t.page.get_by_role("button", name="Разрешить показ экрана всем").click()
    expect(a.locator("[data-notice]")).to_contain_text("Показ экрана разрешён")
    a.get_by_role("button", name="Показать экран").click()
    expect(a.get_by_role("button", name="Остановить показ")).to_be_visible()
    wait_for(t.page, f"""() => {{ const s = window.sferaState.slots;
        const mid = Object.keys(s).find((m) => s[m] && s[m].user_id === '{ids[1]}' && s[m].source === 'screen');
        return mid && window.sferaBrightness(mid) !== null }}""", "the pupil's screen decoded by the teacher")
    t.screen("lesson-screen-shared")
    a.get_by_role("button", name="Остановить показ").click()
    wait_for(t.page, f"""() => !Object.values(window.sferaState.slots).some(
        (v) => v && v.user_id === '{ids[1]}' && v.source === 'screen')""",
             "the stopped screen to leave the teacher's stage")

    # CA-5: two rooms at random, then the first pupil moved by hand into the other's room, then all back.
    t.page.get_by_label("Комнат").fill("2")
    t.page.get_by_role("button", name="Разослать по комнатам").click()
    for page in (a, b):
        expect(page.locator("[data-notice]")).to_contain_text("Вы в комнате")
    shown = api.ok("GET", f"/calls/{call_id}", teacher["access_token"])
    rooms = {p["user_id"]: p["room"] for p in shown["participants"]}
    assert rooms[ids[1]] != rooms[ids[2]] and {rooms[ids[1]], rooms[ids[2]]} == {"room-1", "room-2"}, rooms
    target = rooms[ids[2]]
    t.page.get_by_label("Комната: Хасанов Тимур").select_option(target)
    expect(a.locator("[data-notice]")).to_contain_text(f"Вы в комнате {target[-1]}")
    wait_for(a, f"""() => {{ const s = window.sferaState.slots;
        return Object.values(s).some((v) => v && v.user_id === '{ids[2]}' && v.source === 'camera') }}""",
             "the moved pupil sees the other in their room")
    expect(t.page.get_by_label("Комната: Хасанов Тимур")).to_have_value(target)
    t.screen("lesson-breakouts")
    t.page.get_by_role("button", name="Вернуть всех в общий зал").click()
    for page in (a, b):
        expect(page.locator("[data-notice]")).to_contain_text("Вы снова в общем зале")

    # CA-6: recording; everyone sees it records; stopped, it lands in the lesson's chat and plays there.
    t.page.get_by_role("button", name="Начать запись").click()
    for page in (t.page, a, b):
        expect(page.locator("[data-recording]")).to_contain_text("Идёт запись", timeout=20_000)
    kids[1].screen("lesson-recording")
    time.sleep(4)  # a few seconds of the teacher's camera
    t.page.get_by_role("button", name="Остановить запись").click()
    expect(t.page.get_by_role("button", name="Начать запись")).to_be_visible()
    assert api.ok("GET", f"/calls/{call_id}", teacher["access_token"])["recording"] is False
    for page in (a, b):
        expect(page.locator("[data-recording]")).to_have_count(0, timeout=20_000)

    chat_id = api.ok("GET", f"/calls/{call_id}", pupils[1]["access_token"])["chat_id"]

    def recording_message():
        page = api.ok("GET", f"/chats/{chat_id}/messages", pupils[1]["access_token"])
        return next((m for m in page["items"] if any(a["kind"] == "video" for a in m["attachments"])), None)

    message = eventually(recording_message, timeout=40, what="the recording in the lesson's chat")
    assert message["author_id"] == teacher["user_id"]
    chat = kids[1].context.new_page()
    chat.goto(f"/chats/{chat_id}")
    video = chat.locator(".attachment[data-kind=video] video")
    expect(video).to_have_count(1)
    wait_for(chat, """() => { const v = document.querySelector('.attachment[data-kind=video] video');
        return v && v.readyState >= 2 }""", "the recording loaded")
    start = chat.evaluate("""async () => { const v = document.querySelector('.attachment[data-kind=video] video');
        v.muted = true; await v.play(); return v.currentTime }""")
    wait_for(chat, f"() => document.querySelector('.attachment[data-kind=video] video').currentTime > {start + 0.5}",
             "the recording plays")
    chat.close()

    # CA-7: the teacher ends the lesson for everyone, after a confirmation.
    t.page.once("dialog", lambda dialog: dialog.accept())
    t.page.get_by_role("button", name="Завершить для всех").click()
    for page in (a, b):
        expect(page.get_by_role("status").filter(has_text="Звонок завершён")).to_be_visible()
