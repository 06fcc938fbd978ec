"""The links the platform hands out are pages (SC-3, PL-3..PL-6): a school invite shows the
school and class before joining and its distinct refusals; a parent link lets the parent
check and correct the child's data, consent and confirm, explains the self-link with its
three ways out, and says when the child already has two parents."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.web.test_sign_in import next_code

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def school(api):
    org, admin = api.organization("Гимназия №7", "Казань")
    five = api.ok("POST", f"/organizations/{org}/classes", admin["access_token"], status=201,
                  json={"name": "5Б", "start_year": 2025, "end_year": 2032})["class_id"]
    return {"org": org, "admin": admin, "class_id": five}


def invite(api, school, **extra) -> dict:
    return api.ok("POST", f"/organizations/{school['org']}/invites", school["admin"]["access_token"], status=201,
                  json={"role": "student", "class_id": school["class_id"], "validity": "1d", "max_uses": 5, **extra})


def test_an_invite_shows_the_school_then_sign_in_and_join_SC_3(people, api, web, school):
    link = invite(api, school)
    me = people("pupil")
    me.open(f"/invite/{link['token']}")
    page = me.page
    expect(page.get_by_text("Гимназия №7")).to_be_visible()
    expect(page.get_by_text("5Б")).to_be_visible()
    me.screen("invite")
    page.get_by_role("link", name="Войти и присоединиться").click()
    phone = api.new_phone()
    page.get_by_label("Номер телефона").fill(phone)
    page.get_by_role("button", name="Получить код").click()
    page.get_by_label("Код из SMS").fill(next_code(web, phone, 0))
    page.get_by_role("button", name="Войти", exact=True).click()
    expect(page).to_have_url(f"/welcome?redirect=/invite/{link['token']}")
    page.get_by_label("Фамилия").fill("Орлов")
    page.get_by_label("Имя", exact=True).fill("Илья")
    page.get_by_label("Дата рождения").fill("2014-09-01")
    page.get_by_label("Мужской").check()
    page.get_by_role("button", name="Продолжить").click()
    expect(page).to_have_url(f"/invite/{link['token']}")  # back to the invite after signing up
    page.get_by_role("button", name="Присоединиться").click()
    expect(page.get_by_role("status")).to_contain_text("вы в школе «Гимназия №7»")
    me.screen("invite-joined")
    page.get_by_role("link", name="На главную").click()
    expect(page.get_by_text("5Б")).to_be_visible()  # a pupil's home: their class
    me.screen("home-pupil")


@pytest.mark.parametrize("how, message", [
    ("revoked", "Приглашение отозвано"),
    ("exhausted", "уже присоединились все"),
    ("unknown", "Приглашение не найдено"),
])
def test_an_invite_that_no_longer_works_says_why_SC_3(people, api, school, how, message):
    if how == "unknown":
        token = "no-such-invite-token"
    else:
        link = invite(api, school, max_uses=1)
        token = link["token"]
        if how == "revoked":
            api.ok("DELETE", f"/invites/{link['invite_id']}", school["admin"]["access_token"], status=204)
        else:
            api.ok("POST", f"/invites/{token}/membership", api.person()["access_token"], status=201)
    me = people(f"invite-{how}")
    me.open(f"/invite/{token}")
    expect(me.page.get_by_role("alert")).to_contain_text(message)
    expect(me.page.get_by_role("button", name="Присоединиться")).to_have_count(0)
    me.screen(f"invite-{how}")


def test_a_parent_confirms_the_child_after_the_self_link_explanation_PL_3_PL_4_PL_6(people, api, web, school):
    pupil = api.member(school["org"], school["admin"], "student", school["class_id"],
                       last_name="Кузнецова", first_name="Дарья", birth_date="2013-02-03", sex="female")
    url = api.ok("GET", "/me/parent-invite", pupil["access_token"])["url"]
    path = url.split("://", 1)[1].split("/", 1)[1]

    # PL-6: the pupil opens their own link: an explanation with three ways out.
    me = people("family-device")
    me.sign_in_as(pupil, f"/{path}")
    page = me.page
    expect(page.get_by_role("heading", name="Это ссылка для вашего родителя")).to_be_visible()
    expect(page.get_by_role("main").get_by_role("listitem")).to_have_count(3)
    me.screen("parent-link-self")
    page.get_by_role("button", name="Выйти и войти как родитель").click()

    # The parent signs in with their own phone, gives their data, then comes back to the link.
    expect(page).to_have_url(f"/sign-in?redirect=/{path}")
    phone = api.new_phone()
    page.get_by_label("Номер телефона").fill(phone)
    page.get_by_role("button", name="Получить код").click()
    page.get_by_label("Код из SMS").fill(next_code(web, phone, 0))
    page.get_by_role("button", name="Войти", exact=True).click()
    page.get_by_label("Фамилия").fill("Кузнецов")
    page.get_by_label("Имя", exact=True).fill("Андрей")
    page.get_by_label("Дата рождения").fill("1983-06-07")
    page.get_by_label("Мужской").check()
    page.get_by_role("button", name="Продолжить").click()
    expect(page).to_have_url(f"/{path}")

    # PL-3: the child's data to check and correct, the consent, the confirmation.
    expect(page.get_by_label("Имя", exact=True)).to_have_value("Дарья")
    me.screen("parent-link-form")
    page.get_by_label("Имя", exact=True).fill("Дарина")
    page.get_by_role("button", name="Подтвердить регистрацию").click()
    expect(page.get_by_role("alert")).to_contain_text("Отметьте согласие")
    page.get_by_label("Я даю согласие на использование платформы моим ребёнком").check()
    page.get_by_role("button", name="Подтвердить регистрацию").click()
    expect(page.get_by_role("status")).to_contain_text("Кузнецова Дарина")
    me.screen("parent-link-done")

    # PL-4: the child in the parent's profile and home; the corrected name is the child's.
    page.get_by_role("link", name="Открыть профиль").click()
    expect(page.get_by_role("heading", name="Мои дети")).to_be_visible()
    expect(page.get_by_text("Кузнецова Дарина")).to_be_visible()
    me.screen("profile-parent")
    me.open("/")
    expect(page.get_by_text("Кузнецова Дарина")).to_be_visible()
    me.screen("home-parent")
    assert api.ok("GET", "/me", pupil["access_token"])["first_name"] == "Дарина"


def test_a_third_parent_is_told_the_child_has_two_PL_5(people, api, school):
    pupil = api.member(school["org"], school["admin"], "student", school["class_id"],
                       last_name="Белова", first_name="Ольга", birth_date="2013-02-03", sex="female")
    token = api.ok("GET", "/me/parent-invite", pupil["access_token"])["token"]
    for first in ("Пётр", "Ирина"):
        parent = api.person("Белов", first, "1980-01-01", "male")
        api.ok("POST", f"/parent-invites/{token}/confirmation", parent["access_token"], status=201,
               json={"consent": True})
    third = api.person("Чужой", "Иван", "1980-01-01", "male")
    me = people("third-parent")
    me.sign_in_as(third, f"/parent-invite/{token}")
    expect(me.page.get_by_role("heading", name="У ребёнка уже два родителя")).to_be_visible()
    me.screen("parent-link-limit")
