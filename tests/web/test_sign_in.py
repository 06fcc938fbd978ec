"""Signing in as a person does it (ID-1, ID-2, ID-5, ID-8): by phone and SMS code with a
countdown, a resend and a corrected number; wrong codes explained from the API's codes;
by password; new accounts give their profile; sessions refresh silently through an httpOnly
cookie (no token in localStorage); an ended session returns to sign-in and then back to where the
person was; signing out clears the cookie."""

from __future__ import annotations

import json
import re

import pytest
import requests
from playwright.sync_api import expect

from tests.helpers import eventually

pytestmark = pytest.mark.e2e


def sms_files(web, phone: str) -> list:
    folder = web.var_dir / "outbox" / "sms"
    return sorted(folder.glob(f"*-{phone.lstrip('+')}-*.json")) if folder.exists() else []


def next_code(web, phone: str, seen: int) -> str:
    files = eventually(lambda: (f := sms_files(web, phone)) and len(f) > seen and f, what=f"a new SMS to {phone}")
    return json.loads(files[-1].read_text())["code"]


def test_sign_in_by_sms_with_a_corrected_number_then_the_profile_ID_1_ID_5(people, api, web):
    me = people("newcomer")
    me.open("/")
    page = me.page
    expect(page).to_have_url("/sign-in?redirect=/")  # not signed in: the sign-in, then back home
    expect(page.get_by_role("heading", name="Вход")).to_be_visible()
    me.screen("sign-in")

    # A mistyped number: the API's code shown in Russian.
    page.get_by_label("Номер телефона").fill("+7 912 12")
    page.get_by_role("button", name="Получить код").click()
    expect(page.get_by_role("alert")).to_contain_text("Проверьте номер телефона")

    wrong = api.new_phone()
    page.get_by_label("Номер телефона").fill(wrong)
    page.get_by_role("button", name="Получить код").click()
    expect(page.get_by_label("Код из SMS")).to_be_focused()
    expect(page.get_by_text("Новый код можно запросить через")).to_be_visible()
    me.screen("sign-in-code")

    page.get_by_label("Код из SMS").fill("000000")
    page.get_by_role("button", name="Войти", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("Неверный код")

    # Correcting the number: back to it, the typed number kept, a code to the right phone.
    page.get_by_role("button", name="Изменить номер").click()
    expect(page.get_by_label("Номер телефона")).to_have_value(wrong)
    phone = api.new_phone()
    page.get_by_label("Номер телефона").fill(phone)
    page.get_by_role("button", name="Получить код").click()
    first = next_code(web, phone, 0)
    # The countdown (2 s on the test platform) ends in a resend button; the new code signs in.
    page.get_by_role("button", name="Отправить код ещё раз").click(timeout=10_000)
    code = next_code(web, phone, 1)
    assert code != first or len(sms_files(web, phone)) == 2
    page.get_by_label("Код из SMS").fill(code)
    page.get_by_role("button", name="Войти", exact=True).click()

    # ID-5: a new account gives its full name, birth date and sex before anything else.
    expect(page).to_have_url("/welcome?redirect=/")
    me.screen("welcome")
    page.get_by_label("Фамилия").fill("Петрова")
    page.get_by_label("Имя", exact=True).fill("Анна")
    page.get_by_label("Дата рождения").fill("2012-03-04")
    page.get_by_role("button", name="Продолжить").click()
    expect(page.get_by_role("alert")).to_contain_text("Проверьте")  # no sex chosen: profile.invalid
    page.get_by_label("Женский").check()
    page.get_by_role("button", name="Продолжить").click()
    expect(page).to_have_url("/")
    expect(page.get_by_role("heading", name="Здравствуйте, Анна")).to_be_visible()
    expect(page.get_by_text("Вы пока не в школе")).to_be_visible()
    me.screen("home-new")
    profile = api.ok("GET", "/me", me.session()["access"])
    assert (profile["last_name"], profile["first_name"], profile["sex"]) == ("Петрова", "Анна", "female")


def test_password_sign_in_silent_refresh_and_an_ended_session_ID_2_ID_8(people, api):
    phone = api.new_phone()
    signed = api.sign_in(phone)
    token = signed["access_token"]
    api.ok("PUT", "/me/profile", token, json={"last_name": "Смирнов", "first_name": "Олег",
                                               "birth_date": "1985-01-02", "sex": "male"})
    api.call("PUT", "/me/password", token, json={"new_password": "Correct-horse-42"}).raise_for_status()

    me = people("password")
    me.open("/sign-in")
    page = me.page
    page.get_by_role("button", name="Войти по паролю").click()
    page.get_by_label("Номер телефона").fill(phone)
    page.get_by_label("Пароль").fill("wrong-password-1")
    page.get_by_role("button", name="Войти", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("Неверный номер или пароль")
    me.screen("sign-in-password")
    page.get_by_label("Пароль").fill("Correct-horse-42")
    page.get_by_role("button", name="Войти", exact=True).click()
    expect(page.get_by_role("heading", name="Здравствуйте, Олег")).to_be_visible()

    # The session: the refresh token is an httpOnly, SameSite=Strict cookie of the refresh path only
    # (scripts cannot read it), the access token stays in the page's memory; localStorage holds no token.
    cookie = me.refresh_cookie()
    assert cookie and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert cookie["path"] == "/api/v1/auth/refresh" and not cookie["secure"]  # plain http here
    assert "sfera_refresh" not in page.evaluate("document.cookie")
    assert me.access
    stored = page.evaluate("JSON.stringify({...localStorage})")
    assert me.access not in stored and cookie["value"] not in stored
    assert json.loads(stored)["sfera.signedIn"] == json.dumps({"userId": me.session()["userId"],
                                                               "sessionId": me.session()["sessionId"]},
                                                              separators=(",", ":"))

    # A reload starts with no access token: the client refreshes silently through the cookie (which
    # rotates) and the page loads as if nothing happened.
    before = me.access
    me.open("/profile")
    expect(page.get_by_role("heading", name="Мой профиль")).to_be_visible(timeout=15_000)
    expect(page.get_by_label("Имя", exact=True)).to_have_value("Олег")
    assert me.refresh_cookie()["value"] != cookie["value"] and me.access != before
    me.screen("profile-after-reload")

    # The session ends elsewhere ("sign out everywhere" from another device): the next load
    # returns to sign-in, and signing in again comes back to the same page.
    other = api.sign_in(phone)
    api.ok("DELETE", "/me/sessions", other["access_token"])
    me.open("/profile")
    expect(page).to_have_url("/sign-in?redirect=/profile", timeout=15_000)
    assert me.session() is None
    page.get_by_role("button", name="Войти по паролю").click()
    page.get_by_label("Номер телефона").fill(phone)
    page.get_by_label("Пароль").fill("Correct-horse-42")
    page.get_by_role("button", name="Войти", exact=True).click()
    expect(page).to_have_url("/profile")
    expect(page.get_by_role("heading", name="Мой профиль")).to_be_visible()

    # Signing out clears the cookie and who was signed in; a reload stays signed out.
    assert me.refresh_cookie()
    page.get_by_role("button", name="Выйти на этом устройстве").click()
    expect(page).to_have_url(re.compile(r"/sign-in"))
    assert me.refresh_cookie() is None and me.session() is None
    me.open("/profile")
    expect(page).to_have_url("/sign-in?redirect=/profile")


def test_refreshing_by_cookie_is_refused_without_the_header_or_from_another_site_CSRF(people, api, web):
    """The real gateway: a request carrying the cookie but not the client's header (what a cross-site
    form could send) or from another origin is refused and does not spend the token."""
    me = people("csrf")
    me.sign_in_as(api.person("Кукина", "Зоя", "1990-01-01", "female"), "/profile")
    expect(me.page.get_by_role("heading", name="Мой профиль")).to_be_visible()
    token = me.refresh_cookie()["value"]
    cookie = {"sfera_refresh": token}
    url = f"{web.gateway_url}/api/v1/auth/refresh"
    bare = requests.post(url, json={}, cookies=cookie, timeout=10)
    assert bare.status_code == 403 and bare.json()["error"]["code"] == "auth.refresh_header_required"
    foreign = requests.post(url, json={}, cookies=cookie, timeout=10,
                            headers={"X-Sfera-Session": "cookie", "Origin": "https://evil.example"})
    assert foreign.status_code == 403 and foreign.json()["error"]["code"] == "auth.origin_refused"
    # The token was not spent: the browser's next load still refreshes with it.
    me.open("/profile")
    expect(me.page.get_by_role("heading", name="Мой профиль")).to_be_visible(timeout=15_000)
    assert me.refresh_cookie()["value"] != token


def test_tokens_an_older_client_kept_in_local_storage_move_into_the_cookie(people, api):
    """A browser signed in before the cookie (or a tool that still puts a session there: bench, the call
    test) stays signed in: the stored refresh token is spent once for the cookie and the storage emptied."""
    signed = api.person("Старова", "Вера", "1980-05-05", "female")
    me = people("upgrade")
    me.open("/help")
    me.page.evaluate("s => localStorage.setItem('sfera.session', JSON.stringify(s))", {
        "access": signed["access_token"], "refresh": signed["refresh_token"], "sessionId": signed["session_id"],
        "userId": signed["user_id"], "expiresAt": 0})
    me.open("/profile")
    expect(me.page.get_by_role("heading", name="Мой профиль")).to_be_visible(timeout=15_000)
    stored = me.page.evaluate("JSON.stringify({...localStorage})")
    assert "sfera.session" not in stored and signed["refresh_token"] not in stored
    assert me.refresh_cookie()["value"] not in ("", signed["refresh_token"])
    assert api.call("POST", "/auth/refresh", json={"refresh_token": signed["refresh_token"]}).status_code == 401
