"""EJ-7: the journal's lesson page links to /ejournal/<provider>/lessons/<lesson id>, which lands
in the lesson's subject chat; a lesson the platform does not know is said so."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from playwright.sync_api import expect

from tests.e2e.test_ejournal import link
from tests.e2e.test_rules_school_calls import journal, lesson_record, push  # noqa: F401  (the simulator's school)
from tests.helpers import eventually

pytestmark = pytest.mark.e2e


def test_the_journals_lesson_page_opens_the_subject_chat_EJ_7(people, api, journal):  # noqa: F811
    pupil = link(api, journal, journal["pupils"][0])
    api.ok("PUT", "/me/profile", pupil["access_token"], json={
        "last_name": "Хасанов", "first_name": "Тимур", "birth_date": "2013-04-05", "sex": "male"})
    push(journal, [lesson_record(journal, 7, journal["a"], datetime.now(timezone.utc) + timedelta(days=1), False)])
    provider = journal["provider"]["provider_id"]
    chat = eventually(lambda: (r := api.call("GET", f"/ejournal/providers/{provider}/lessons/rules-lesson-7/chat",
                                              pupil["access_token"])).status_code == 200 and r.json(),
                      what="the lesson's subject chat")
    me = people("lesson-pupil")
    me.sign_in_as(pupil, f"/ejournal/{provider}/lessons/rules-lesson-7")
    expect(me.page).to_have_url(re.compile(f"/chats/{chat['chat_id']}$"))
    expect(me.page.get_by_role("heading", level=1)).to_have_text(chat["name"] or chat["subject"])
    me.screen("lesson-chat")

    me.open(f"/ejournal/{provider}/lessons/no-such-lesson")
    expect(me.page.get_by_role("alert")).to_contain_text("Урок не найден")
    me.screen("lesson-chat-unknown")
