"""Linking the e-journal in the browser (EJ-1): from the profile, the region, then its e-journal,
sign in there (the simulated regional journal, tools/ejournal_sim), back on the client's page with
the link shown; the linked journal in the profile, unlinked from there."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.test_ejournal import journal  # noqa: F401  (the simulator and its registered providers)

pytestmark = pytest.mark.e2e


def test_link_the_e_journal_from_the_profile_and_unlink_it_EJ_1(people, api, journal):  # noqa: F811
    school = journal["school"]
    student = school.students_of(school.classes[1]["sourcedId"])[0]
    session = api.person("Журналова", "Лиза", "2012-02-02", "female")

    me = people("journal-pupil")
    me.sign_in_as(session, "/profile")
    page = me.page
    expect(page.get_by_text("Журнал пока не подключён")).to_be_visible()
    page.get_by_role("link", name="Подключить журнал").click()
    # Regions by name (the API has codes only), in the reader's language; 16 and 77 are simulated.
    expect(page.get_by_label("Регион").locator("option")).to_have_text(
        ["Выберите регион", "Москва", "Республика Татарстан"])
    page.get_by_label("Регион").select_option(label="Республика Татарстан")
    expect(page.get_by_label("Электронный журнал")).to_have_value(journal["providers"]["16"]["provider_id"])
    me.screen("ejournal-start")
    page.get_by_role("button", name="Войти в журнале").click()

    # The journal's own sign-in page (another site), then back to the client.
    page.get_by_label("Логин").fill(student)
    page.get_by_label("Пароль").fill(school.password(student))
    page.get_by_role("button", name="Войти").click()
    expect(page).to_have_url(re.compile(r"/ejournal/callback\?"))
    expect(page.get_by_role("status")).to_contain_text("Журнал подключён")
    expect(page.get_by_role("status")).to_contain_text("Республика Татарстан: вы в журнале — ученик")
    me.errors.clear()  # the simulator's page is not ours (its favicon 404 and the like)
    me.screen("ejournal-linked")

    page.get_by_role("link", name="Мои журналы").click()
    expect(page.locator("[data-link='16']")).to_contain_text("Республика Татарстан · ученик")
    me.open("/profile")
    linked = page.locator("[data-link='16']")
    linked.get_by_role("button", name="Отключить").click()
    me.screen("profile-ejournal-unlink")
    linked.get_by_role("button", name="Да, отключить").click()
    expect(page.get_by_text("Журнал пока не подключён")).to_be_visible()
    assert api.ok("GET", "/me/ejournal-links", session["access_token"]) == []

    # The journal's own "connect" button lands on /ejournal/link: the account here is named and confirmed before
    # the journal's sign-in (on a shared device it began by itself for whoever was signed in here).
    me.open(f"/ejournal/link?provider_id={journal['providers']['16']['provider_id']}&login_hint={student}")
    expect(page.locator("[data-account]")).to_have_text("Журналова Лиза")
    me.screen("ejournal-link-confirm")
    page.get_by_role("button", name="Связать и войти в журнал").click()
    expect(page.get_by_label("Логин")).to_be_visible()  # the journal's sign-in
