"""An inbox thread outlives its writer's membership (CH-5): a pupil who left the school keeps their thread with the
administration, and the client names it by the school from the school's public details (GET /organizations/{id}),
not from the pupil's schools of now, which no longer hold it (it showed "Чат"). The admins name it by its writer,
from the people API, which a shared chat keeps open. Russian and English; axe and screenshots at 360 px and desktop."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.helpers import eventually

pytestmark = pytest.mark.e2e

SCHOOL = "Гимназия «Выпускная»"


@pytest.fixture(scope="module")
def left(api):
    """A pupil who wrote to the administration and was then taken out of the school; the admin answered."""
    org, admin = api.organization(SCHOOL, "Казань")
    klass = api.ok("POST", f"/organizations/{org}/classes", admin["access_token"], status=201,
                   json={"name": "11А", "start_year": 2019, "end_year": 2030})["class_id"]
    pupil = api.member(org, admin, "student", klass, last_name="Ушедшева", first_name="Алла", birth_date="2010-03-03",
                       sex="female")
    thread = eventually(lambda: api.call("POST", "/inbox-threads", pupil["access_token"], json={
        "organization_id": org}).json().get("chat_id"), what="messaging to learn the pupil joined")
    api.ok("POST", f"/chats/{thread}/messages", pupil["access_token"], status=201, json={"text": "Заберу документы"})
    api.ok("DELETE", f"/organizations/{org}/members/{pupil['user_id']}", admin["access_token"], status=204)
    eventually(lambda: not api.ok("GET", "/me/organizations", pupil["access_token"]), what="the pupil out of school")
    eventually(lambda: thread in [c["chat"]["chat_id"] for c in api.ok("GET", "/chats", pupil["access_token"])]
               and not any(c["chat"]["kind"] == "organization" for c in api.ok("GET", "/chats", pupil["access_token"])),
               what="messaging to take the pupil out of the school's chats but not out of their thread")
    return {"org": org, "admin": admin, "pupil": pupil, "thread": thread}


def test_the_writer_who_left_sees_their_thread_named_by_the_school_CH_5(people, left):
    pupil = people("pupil-left")
    pupil.sign_in_as(left["pupil"], "/chats")
    page = pupil.page
    row = page.locator(f"[data-chat='{left['thread']}'] .chat-row-title")
    expect(row).to_contain_text(SCHOOL)
    pupil.screen("chat-inbox-left-school")
    row.click()
    expect(page.get_by_role("heading", level=1)).to_have_text(SCHOOL)
    page.get_by_role("button", name="English").click()
    page.goto("/chats")
    expect(page.locator(f"[data-chat='{left['thread']}'] .chat-row-title")).to_contain_text(SCHOOL)
    pupil.screen("chat-inbox-left-school-en")


def test_the_admins_see_the_thread_of_a_pupil_who_left_named_by_the_pupil_CH_5(people, left):
    admin = people("admin-left")
    admin.sign_in_as(left["admin"], "/chats")
    expect(admin.page.locator(f"[data-chat='{left['thread']}'] .chat-row-title")).to_contain_text("Ушедшева Алла")
    admin.screen("chat-inbox-left-school-admin")
