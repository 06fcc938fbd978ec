"""Identity end to end: every flow and every refusal through the gateway, against
the running platform (RabbitMQ, PostgreSQL, every service)."""

from __future__ import annotations

import time
import uuid

import pytest

from tests.helpers import eventually

pytestmark = pytest.mark.e2e


def error(response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


# -- ID-1, ID-3 -------------------------------------------------------------------------------


def test_refusals_of_sign_in_have_stable_codes_ID_1(api):
    assert error(api.call("POST", "/auth/sign-in-codes", json={"phone": "+7 000"})) == (400, "phone.invalid")
    assert error(api.call("POST", f"/auth/sign-in-codes/{uuid.uuid4()}/confirmation",
                          json={"code": "123456"})) == (404, "sign_in.not_found")
    phone = api.new_phone()
    challenge = api.request_code(phone)
    too_early = api.call("POST", "/auth/sign-in-codes", json={"phone": phone})
    assert error(too_early) == (429, "sign_in.resend_too_early")
    assert 0 < too_early.json()["error"]["details"]["retry_after"] <= 60
    real = api.inbox_code("sms", phone)
    wrong = api.call("POST", f"/auth/sign-in-codes/{challenge['challenge_id']}/confirmation",
                     json={"code": "000000" if real != "000000" else "111111"})
    assert error(wrong) == (400, "sign_in.wrong_code")
    assert wrong.json()["error"]["details"]["attempts_left"] == 4
    api.ok("POST", f"/auth/sign-in-codes/{challenge['challenge_id']}/confirmation", json={"code": real})
    reused = api.call("POST", f"/auth/sign-in-codes/{challenge['challenge_id']}/confirmation", json={"code": real})
    assert error(reused) == (410, "sign_in.already_used")


def test_a_flash_call_code_signs_in_ID_1(api):
    phone = api.new_phone()
    challenge = api.request_code(phone, channel="flash_call")
    code = api.inbox_code("flash_call", phone)
    assert len(code) == 4
    assert api.ok("POST", f"/auth/sign-in-codes/{challenge['challenge_id']}/confirmation", json={"code": code})


def test_one_phone_one_account_ID_3(api):
    phone = api.new_phone()
    first = api.sign_in(phone)
    time.sleep(2.1)  # the countdown before a second code (2 s in this platform)
    again = api.sign_in("8" + phone[2:])  # the same number, typed the Russian way
    assert first["new_account"] is True and again["new_account"] is False
    assert again["user_id"] == first["user_id"]


# -- ID-5, privacy ------------------------------------------------------------------------------------


def test_profile_is_filled_in_and_others_see_the_name_only_ID_5_ID_7(api):
    maria = api.person("Иванова", "Мария")
    me = api.ok("GET", "/me", maria["access_token"])
    assert (me["last_name"], me["profile_complete"], me["sex"]) == ("Иванова", True, "female")
    bad = api.call("PUT", "/me/profile", maria["access_token"], json={"last_name": "Иванова", "first_name": "М4",
                                                                      "birth_date": "1700-01-01", "sex": "female"})
    assert error(bad) == (400, "profile.invalid")
    other = api.sign_in()
    hidden = api.call("GET", f"/people/{maria['user_id']}", other["access_token"])
    assert error(hidden) == (404, "account.not_found")  # ID-7: strangers see nobody
    school = uuid.uuid4()
    for person in (maria, other):
        api.publish_school_event({"organization_id": school, "user_id": person["user_id"], "role": "student"})
    seen = eventually(lambda: (lambda r: r.status_code == 200 and r.json())(
        api.call("GET", f"/people/{maria['user_id']}", other["access_token"])), what="identity to learn of the school")
    assert seen == {"user_id": maria["user_id"], "relation": "other", "last_name": "Иванова",
                    "first_name": "Мария", "patronymic": None, "teacher_confirmed": False}
    forbidden = api.call("PUT", f"/people/{maria['user_id']}/profile", other["access_token"],
                         json={"last_name": "X", "first_name": "Y", "birth_date": "2000-01-01", "sex": "male"})
    assert error(forbidden) == (403, "profile.forbidden")


# -- ID-2 passwords ---------------------------------------------------------------------------------------


def test_password_set_sign_in_and_refusals_ID_2(api):
    phone = api.new_phone()
    session = api.sign_in(phone)
    weak = api.call("PUT", "/me/password", session["access_token"], json={"new_password": "12345678"})
    assert error(weak) == (400, "password.too_weak")
    assert b"12345678" not in weak.content
    api.ok("PUT", "/me/password", session["access_token"], json={"new_password": "correct horse battery"},
           status=204)
    signed = api.ok("POST", "/auth/password-sign-in", json={"phone": phone, "password": "correct horse battery"})
    assert signed["user_id"] == session["user_id"]
    wrong = api.call("POST", "/auth/password-sign-in", json={"phone": phone, "password": "wrong horse battery"})
    unknown = api.call("POST", "/auth/password-sign-in", json={"phone": api.new_phone(), "password": "whatever12"})
    assert error(wrong) == error(unknown) == (401, "sign_in.bad_credentials")
    assert wrong.json()["error"]["message"] == unknown.json()["error"]["message"]
    change = api.call("PUT", "/me/password", session["access_token"],
                      json={"current_password": "not it at all", "new_password": "another good one"})
    assert error(change) == (403, "password.current_wrong")


# -- ID-6 this is not me ------------------------------------------------------------------------------------


def test_this_is_not_me_starts_a_new_account_and_keeps_the_old_ones_data_ID_6(api):
    phone = api.new_phone()
    old = api.sign_in(phone)
    api.ok("PUT", "/me/profile", old["access_token"], json={"last_name": "Прежний", "first_name": "Владелец",
                                                            "birth_date": "1970-01-01", "sex": "male"})
    time.sleep(2.1)  # the countdown before a second code to the same phone (ID-1)
    challenge = api.request_code(phone)
    code = api.inbox_code("sms", phone)
    fresh = api.ok("POST", "/auth/not-me", json={"challenge_id": challenge["challenge_id"], "code": code})
    assert fresh["new_account"] is True and fresh["user_id"] != old["user_id"]
    kept = api.ok("GET", "/me", old["access_token"])
    assert kept["phone"] is None and kept["phone_detached"] is True and kept["last_name"] == "Прежний"
    assert api.ok("GET", "/me", fresh["access_token"])["phone"] == phone


# -- ID-8 sessions ---------------------------------------------------------------------------------------------


def test_sessions_rotate_list_and_sign_out_ID_8(api):
    phone = api.new_phone()
    first = api.sign_in(phone)
    refreshed = api.ok("POST", "/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert refreshed["refresh_token"] != first["refresh_token"]
    reused = api.call("POST", "/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert error(reused) == (401, "auth.refresh_reused")
    dead = api.call("POST", "/auth/refresh", json={"refresh_token": refreshed["refresh_token"]})
    assert error(dead) == (401, "auth.session_revoked")
    api.ok("PUT", "/me/password", first["access_token"], json={"new_password": "correct horse battery"},
           status=204)
    laptop = api.ok("POST", "/auth/password-sign-in", json={"phone": phone, "password": "correct horse battery"},
                    headers={"User-Agent": "Laptop Firefox"})
    tablet = api.ok("POST", "/auth/password-sign-in", json={"phone": phone, "password": "correct horse battery"},
                    headers={"User-Agent": "Tablet Safari"})
    sessions = api.ok("GET", "/me/sessions", tablet["access_token"])
    assert {s["device"] for s in sessions} == {"Laptop Firefox", "Tablet Safari"}
    assert [s["current"] for s in sessions if s["device"] == "Tablet Safari"] == [True]
    api.ok("DELETE", f"/me/sessions/{laptop['session_id']}", tablet["access_token"], status=204)
    assert error(api.call("POST", "/auth/refresh", json={"refresh_token": laptop["refresh_token"]})) == (
        401, "auth.session_revoked")
    assert api.ok("DELETE", "/me/sessions?keep=current", tablet["access_token"]) == {"signed_out": 0}
    assert api.ok("DELETE", "/me/sessions", tablet["access_token"]) == {"signed_out": 1}
    assert api.ok("GET", "/me/sessions", tablet["access_token"]) == []
    stranger = api.sign_in()
    assert error(api.call("DELETE", f"/me/sessions/{tablet['session_id']}", stranger["access_token"])) == (
        404, "session.not_found")


def test_requests_without_a_valid_token_are_refused(api):
    assert error(api.call("GET", "/me")) == (401, "auth.required")
    assert error(api.call("GET", "/me", "not-a-jwt")) == (401, "auth.invalid_token")


# -- PL parent linking ------------------------------------------------------------------------------------------


def make_student(api, organization_id: uuid.UUID | None = None) -> dict:
    student = api.person("Петрова", "Аня", "2015-02-03", "female")
    api.publish_school_event({"organization_id": organization_id or uuid.uuid4(), "user_id": student["user_id"],
                              "role": "student", "class_id": uuid.uuid4()})
    eventually(lambda: api.call("GET", "/me/parent-invite", student["access_token"]).status_code == 200,
               what="identity to learn from school that this is a student")
    return student


def test_parent_linking_end_to_end_PL_1_to_PL_6(api):
    teacher = api.person("Сидорова", "Ольга", "1980-01-01", "female")
    assert error(api.call("GET", "/me/parent-invite", teacher["access_token"])) == (
        403, "parent_link.students_only")                                                   # PL-1
    school = uuid.uuid4()
    child = make_student(api, school)
    invite = api.ok("GET", "/me/parent-invite", child["access_token"])
    assert api.ok("GET", "/me/parent-invite", child["access_token"])["token"] == invite["token"]  # PL-2
    assert invite["url"].endswith(invite["token"])
    qr = api.call("GET", "/me/parent-invite/qr.svg", child["access_token"])
    assert qr.status_code == 200 and qr.headers["Content-Type"].startswith("image/svg+xml")

    own = api.call("GET", f"/parent-invites/{invite['token']}", child["access_token"])     # PL-6
    assert error(own) == (403, "parent_link.self_link")
    assert len(own.json()["error"]["details"]["ways_out"]) == 3

    mum = api.person("Петрова", "Елена", "1985-06-07", "female")
    opened = api.ok("GET", f"/parent-invites/{invite['token']}", mum["access_token"])     # PL-3
    assert (opened["first_name"], opened["birth_date"], opened["parents_linked"]) == ("Аня", "2015-02-03", 0)
    assert "phone" not in opened
    no_consent = api.call("POST", f"/parent-invites/{invite['token']}/confirmation", mum["access_token"],
                          json={"consent": False})
    assert error(no_consent) == (400, "parent_link.consent_required")
    api.ok("POST", f"/parent-invites/{invite['token']}/confirmation", mum["access_token"], status=201,
           json={"consent": True, "child": {"last_name": "Петрова", "first_name": "Анна",
                                            "birth_date": "2015-02-03", "sex": "female"}})
    assert [c["first_name"] for c in api.ok("GET", "/me/children", mum["access_token"])] == ["Анна"]   # PL-4
    assert [p["first_name"] for p in api.ok("GET", "/me/parents", child["access_token"])] == ["Елена"]
    seen_by_mum = api.ok("GET", f"/people/{child['user_id']}", mum["access_token"])
    assert seen_by_mum["relation"] == "parent" and seen_by_mum["birth_date"] == "2015-02-03"
    assert "phone" not in seen_by_mum

    dad = api.person("Петров", "Игорь", "1983-01-01", "male")
    api.ok("POST", f"/parent-invites/{invite['token']}/confirmation", dad["access_token"], status=201,
           json={"consent": True})
    third = api.person("Кузнецова", "Вера", "1960-01-01", "female")
    refused = api.call("POST", f"/parent-invites/{invite['token']}/confirmation", third["access_token"],
                       json={"consent": True})
    assert error(refused) == (403, "parent_link.limit_reached")                                  # PL-5
    assert error(api.call("GET", f"/parent-invites/{invite['token']}", third["access_token"])) == (
        403, "parent_link.limit_reached")

    stranger = api.sign_in()
    assert error(api.call("DELETE", f"/children/{child['user_id']}/parents/{dad['user_id']}",
                          stranger["access_token"])) == (403, "parent_link.unlink_forbidden")
    api.ok("DELETE", f"/children/{child['user_id']}/parents/{dad['user_id']}", dad["access_token"], status=204)
    assert len(api.ok("GET", "/me/parents", child["access_token"])) == 1


def test_a_parent_of_children_in_two_schools_sees_both_PL_7(api):
    parent = api.person("Смирнов", "Олег", "1979-01-01", "male")
    for school in (uuid.uuid4(), uuid.uuid4()):
        child = make_student(api, school)
        token = api.ok("GET", "/me/parent-invite", child["access_token"])["token"]
        api.ok("POST", f"/parent-invites/{token}/confirmation", parent["access_token"], status=201,
               json={"consent": True})
    assert len(api.ok("GET", "/me/children", parent["access_token"])) == 2
