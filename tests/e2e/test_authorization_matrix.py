"""The authorization matrix (issue #12): every endpoint that reads or changes a school's,
chat's, person's, call's or file's data, called by every role, through the gateway.

The endpoints come from the gateway's own URL map (``/openapi.json``): one with path
parameters that is neither in ``TABLE`` nor in ``PUBLIC`` fails the test, so a new
endpoint cannot be forgotten. A role outside a row's ``allowed`` must be refused (any
4xx but a malformed request: a 2xx is a leak); an allowed role is called too when the
call changes nothing (reads), and must succeed. Changes are called only by the roles
that must be refused, so the world stays as it was built.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field

import pytest
import requests

from tests.helpers import eventually

pytestmark = pytest.mark.e2e

ROLES = ("anonymous", "admin", "teacher", "pupil", "pupil_other_class", "parent", "other_parent", "other_admin",
         "other_pupil", "removed")
SIGNED = frozenset(ROLES) - {"anonymous"}
SCHOOL = frozenset({"admin", "teacher", "pupil", "pupil_other_class", "parent", "other_parent"})
CHAT = frozenset({"teacher", "pupil"})  # the manual chat: its creator and the pupil (the removed one left it)
CALL = CHAT  # the call started from that chat, for its members
NOBODY: frozenset[str] = frozenset()

# Token links are capabilities: whoever holds the link may open it (the refusals are the
# services' own rules, tested with them); the rest prove who one is another way.
PUBLIC = {
    ("POST", "/auth/sign-in-codes/{challenge_id}/confirmation"): "the code is the proof",
    ("POST", "/auth/email-codes/{challenge_id}/confirmation"): "the code is the proof",
    ("POST", "/ejournal/webhooks/{provider_id}"): "HMAC-signed by the e-journal",
    ("GET", "/invites/{token}"): "an invite link's preview (SC-6)",
    ("GET", "/invites/{token}/qr.{fmt}"): "an invite link's QR code",
    ("POST", "/invites/{token}/membership"): "joining by an invite link (SC-6)",
    ("GET", "/chat-invites/{token}"): "a chat link's preview (CH-3)",
    ("GET", "/chat-invites/{token}/qr.{fmt}"): "a chat link's QR code",
    ("GET", "/parent-invites/{token}"): "PL-3: whose link it is, the data only to the signed-in parent",
    ("POST", "/parent-invites/{token}/confirmation"): "PL-3: the parent confirms with the link",
}


@dataclass
class Row:
    allowed: frozenset[str]
    params: dict[str, str] = field(default_factory=dict)  # placeholders filled from the world by name
    json: dict | None = None
    form: dict | None = None
    probe: bool | None = None  # call the allowed roles too (default: for reads)


def table(w: dict) -> dict[tuple[str, str], Row]:
    org = w["org"]
    student_invite = {"role": "student", "class_id": w["five"], "validity": "1d"}
    return {
        # -- organizations, classes, members (SC-*, RO-*)
        ("GET", "/organizations/{organization_id}"): Row(SIGNED),  # the public directory card (SC-2)
        ("PATCH", "/organizations/{organization_id}"): Row(frozenset({"admin"}), json={"address": "ул. Ленина, 1"}),
        ("POST", "/organizations/{organization_id}/admins"): Row(frozenset({"admin"}),
                                                                 json={"user_id": w["ids"]["teacher"]}),
        ("GET", "/organizations/{organization_id}/classes"): Row(SCHOOL),
        ("POST", "/organizations/{organization_id}/classes"): Row(
            frozenset({"admin"}), json={"name": "7В", "start_year": 2025, "end_year": 2030}),
        ("PUT", "/organizations/{organization_id}/classes/{class_id}/teaching"): Row(
            frozenset({"teacher"}), json={"subjects": ["Физика"]}),
        ("GET", "/organizations/{organization_id}/members"): Row(SCHOOL),
        ("PUT", "/organizations/{organization_id}/members/{user_id}"): Row(
            frozenset({"admin"}), {"user_id": w["ids"]["pupil_other_class"]},
            json={"roles": ["student"], "class_id": w["five"]}),
        ("DELETE", "/organizations/{organization_id}/members/{user_id}"): Row(
            frozenset({"admin"}), {"user_id": w["ids"]["pupil_other_class"]}),
        ("GET", "/organizations/{organization_id}/invites"): Row(frozenset({"admin", "teacher"})),
        ("POST", "/organizations/{organization_id}/invites"): Row(frozenset({"admin", "teacher"}),
                                                                  json=student_invite),
        ("DELETE", "/invites/{invite_id}"): Row(frozenset({"admin"})),
        ("GET", "/organizations/{organization_id}/join-requests"): Row(frozenset({"admin"})),
        # Anyone signed in may ask to join a school (SC-2); members are told they are members.
        ("POST", "/organizations/{organization_id}/join-requests"): Row(SIGNED, json={"message": "Здравствуйте"}),
        ("POST", "/organizations/{organization_id}/join-requests/{user_id}/acceptance"): Row(
            frozenset({"admin"}), {"user_id": w["ids"]["applicant"]}, json={"role": "student", "class_id": w["five"]}),
        ("POST", "/organizations/{organization_id}/join-requests/{user_id}/hiding"): Row(
            frozenset({"admin"}), {"user_id": w["ids"]["applicant"]}),
        ("GET", "/organizations/{organization_id}/inbox"): Row(frozenset({"admin"})),
        ("GET", "/organizations/{organization_id}/reports"): Row(frozenset({"admin"})),
        ("POST", "/reports/{report_id}/resolution"): Row(frozenset({"admin"}), json={"resolution": "dismissed"}),
        # -- materials (SC-10..SC-12)
        ("GET", "/organizations/{organization_id}/documents"): Row(SCHOOL),
        ("POST", "/organizations/{organization_id}/documents"): Row(
            frozenset({"admin", "teacher"}), form={"title": "План"}),
        ("GET", "/documents/{document_id}/content"): Row(SCHOOL),
        ("GET", "/organizations/{organization_id}/articles"): Row(SCHOOL),
        ("POST", "/organizations/{organization_id}/articles"): Row(
            frozenset({"admin", "teacher"}), json={"title": "Новости", "html": "<p>Текст</p>"}),
        ("GET", "/articles/{article_id}"): Row(frozenset({"admin"})),  # a draft: its author (and admins), SC-11
        ("PUT", "/articles/{article_id}"): Row(frozenset({"admin"}), json={"title": "Правка", "html": "<p>Т</p>"}),
        ("POST", "/articles/{article_id}/publication"): Row(frozenset({"admin"})),
        ("GET", "/articles/{article_id}/cover"): Row(SCHOOL, probe=False),  # this article has no cover
        ("GET", "/organizations/{organization_id}/channels"): Row(SCHOOL),
        ("POST", "/organizations/{organization_id}/channels"): Row(frozenset({"admin"}), json={"name": "Объявления"}),
        ("GET", "/channels/{channel_id}"): Row(SCHOOL),
        ("GET", "/channels/{channel_id}/posts"): Row(SCHOOL),
        ("POST", "/channels/{channel_id}/posts"): Row(frozenset({"admin"}), json={"text": "Завтра линейка"}),
        # -- chats and messages (CH-*)
        ("GET", "/chats/{chat_id}"): Row(CHAT),
        ("PATCH", "/chats/{chat_id}"): Row(CHAT, json={"name": "Кружок+"}),
        ("POST", "/chats/{chat_id}/members"): Row(CHAT, json={"member_ids": [w["ids"]["pupil_other_class"]]}),
        ("DELETE", "/chats/{chat_id}/members/{user_id}"): Row(frozenset({"teacher", "pupil"}),
                                                              {"user_id": w["ids"]["pupil"]}),
        ("GET", "/chats/{chat_id}/invite"): Row(CHAT),
        ("POST", "/chats/{chat_id}/invite"): Row(CHAT),
        ("DELETE", "/chats/{chat_id}/invite"): Row(CHAT),
        ("POST", "/chat-invites/{token}/membership"): Row(SCHOOL, {"token": w["chat_token"]}),  # CH-6
        ("GET", "/chats/{chat_id}/messages"): Row(CHAT),
        ("POST", "/chats/{chat_id}/messages"): Row(CHAT, json={"text": "Привет"}),
        ("PUT", "/chats/{chat_id}/messages/{seq}"): Row(frozenset({"pupil"}), {"seq": "0"}, json={"text": "Правка"}),
        ("DELETE", "/chats/{chat_id}/messages/{seq}"): Row(frozenset({"pupil", "teacher"}), {"seq": "0"}),
        ("PUT", "/chats/{chat_id}/messages/{seq}/vote"): Row(CHAT, {"seq": "1"}, json={"options": [0]}),
        # who has read the pupil's message: its author and the chat's creator (its admin)
        ("GET", "/chats/{chat_id}/messages/{seq}/readers"): Row(CHAT, {"seq": "0"}),
        ("POST", "/chats/{chat_id}/messages/{seq}/poll-closure"): Row(frozenset({"teacher"}), {"seq": "1"}),
        ("POST", "/chats/{chat_id}/messages/{seq}/reports"): Row(frozenset({"pupil"}), {"seq": "1"},
                                                                 json={"reason": "Спам"}),
        ("PUT", "/chats/{chat_id}/read"): Row(CHAT, json={"seq": 0}),
        ("POST", "/chats/{chat_id}/attachments"): Row(CHAT, form={"kind": "file"}),
        ("GET", "/chats/{chat_id}/attachments/{attachment_id}"): Row(CHAT),
        ("GET", "/ejournal/providers/{provider_id}/lessons/{external_lesson_id}/chat"): Row(NOBODY),  # no such lesson
        # -- calls (CA-*)
        ("GET", "/calls/{call_id}"): Row(CALL),
        ("POST", "/calls/{call_id}/join"): Row(CALL),
        ("POST", "/calls/{call_id}/leave"): Row(CALL),
        ("PUT", "/calls/{call_id}/hand"): Row(CALL, json={"raised": True}),
        ("DELETE", "/calls/{call_id}/mute"): Row(CALL),
        ("DELETE", "/calls/{call_id}/participants/{user_id}/hand"): Row(frozenset({"teacher"}),
                                                                        {"user_id": w["ids"]["teacher"]}),
        ("POST", "/calls/{call_id}/participants/{user_id}/mute"): Row(frozenset({"teacher"}),
                                                                      {"user_id": w["ids"]["teacher"]}),
        ("DELETE", "/calls/{call_id}/participants/{user_id}"): Row(frozenset({"teacher"}),
                                                                   {"user_id": w["ids"]["teacher"]}),
        ("PUT", "/calls/{call_id}/permissions"): Row(frozenset({"teacher"}), json={"screen_share": True}),
        ("POST", "/calls/{call_id}/breakouts"): Row(frozenset({"teacher"}), json={"count": 2}),
        ("POST", "/calls/{call_id}/breakouts/moves"): Row(frozenset({"teacher"}),
                                                          json={"user_id": w["ids"]["teacher"], "room": "main"}),
        ("DELETE", "/calls/{call_id}/breakouts"): Row(frozenset({"teacher"})),
        ("POST", "/calls/{call_id}/recording"): Row(frozenset({"teacher"})),
        ("DELETE", "/calls/{call_id}/recording"): Row(frozenset({"teacher"})),
        ("POST", "/calls/{call_id}/end"): Row(frozenset({"teacher"})),
        # the whiteboard is for the people in the call now: its starter (the pupil may join but has not)
        ("GET", "/calls/{call_id}/whiteboard"): Row(frozenset({"teacher"})),
        ("POST", "/calls/{call_id}/whiteboard/strokes"): Row(frozenset({"teacher"}), json={
            "stroke_id": str(uuid.uuid4()), "color": "#1f2937", "width": 2, "points": [1, 1, 2, 2]}),
        ("POST", "/calls/{call_id}/whiteboard/undo"): Row(frozenset({"teacher"})),
        ("DELETE", "/calls/{call_id}/whiteboard/strokes/{stroke_id}"): Row(frozenset({"teacher"}),
                                                                          {"stroke_id": str(uuid.uuid4())}),
        ("DELETE", "/calls/{call_id}/whiteboard"): Row(frozenset({"teacher"})),
        ("GET", "/lessons/{lesson_id}/call"): Row(NOBODY),  # no such lesson: nobody learns of one
        ("POST", "/lessons/{lesson_id}/call"): Row(NOBODY),
        # -- people and parents (ID-*, PL-*)
        ("GET", "/people/{user_id}"): Row(SCHOOL, {"user_id": w["ids"]["pupil"]}),  # ID-7: a shared school
        ("PUT", "/people/{user_id}/profile"): Row(frozenset({"pupil", "parent"}), {"user_id": w["ids"]["pupil"]},
                                                  json={"last_name": "Взломова", "first_name": "Анна",
                                                        "birth_date": "2014-03-02", "sex": "female"}),
        ("DELETE", "/children/{child_id}/parents/{parent_id}"): Row(frozenset({"parent", "admin"})),
        ("DELETE", "/children/{child_id}/parent-invite"): Row(frozenset({"pupil", "parent", "admin"})),
        ("GET", "/me/parent-invite/qr.{fmt}"): Row(frozenset({"pupil", "pupil_other_class", "other_pupil"})),
        ("DELETE", "/me/sessions/{session_id}"): Row(frozenset({"pupil"})),  # one's own sessions only (ID-8)
        ("DELETE", "/me/ejournal-links/{provider_id}"): Row(SIGNED, probe=False),  # one's own links only
        # -- the platform operator's (not one of these roles)
        ("POST", "/operator/applications/{application_id}/approval"): Row(NOBODY),
        ("POST", "/operator/applications/{application_id}/rejection"): Row(NOBODY, json={"reason": "Нет"}),
        ("GET", "/operator/ejournal-providers/{provider_id}"): Row(NOBODY),
        ("POST", "/operator/ejournal-providers/{provider_id}/replay"): Row(NOBODY),
        ("GET", "/operator/ejournal-providers/{provider_id}/schools/{external_org_id}"): Row(NOBODY),  # progress
        ("PUT", "/operator/ejournal-providers/{provider_id}/schools/{external_org_id}"): Row(
            NOBODY, json={"organization_id": org}),
        ("POST", "/operator/ejournal-providers/{provider_id}/webhook-secret"): Row(NOBODY, json={"grace_seconds": 60}),
    }


def member_of_messaging(api, session, org: str) -> None:
    """Messaging learns school's members from its events: wait until it knows this one."""
    eventually(lambda: any(c["chat"]["kind"] == "organization" and c["chat"]["organization_id"] == org
                           for c in api.ok("GET", "/chats", session["access_token"])),
               what="messaging to know the member")


@pytest.fixture(scope="module")
def world(api) -> dict:
    """School A: admin, a teacher of 5А, a pupil of 5А and one of 6Б, each with a parent, a
    pupil removed from the school; a manual chat with messages, a poll and a file, its
    invite link, a report, a call from it, a document, an article, a channel, an invite, a
    join request. School B: its admin and a pupil."""
    org, admin = api.organization("Гимназия матрицы", "Калуга")
    t = admin["access_token"]
    five = api.ok("POST", f"/organizations/{org}/classes", t, status=201,
                  json={"name": "5А", "start_year": 2025, "end_year": 2032})["class_id"]
    six = api.ok("POST", f"/organizations/{org}/classes", t, status=201,
                 json={"name": "6Б", "start_year": 2024, "end_year": 2031})["class_id"]
    s = {"anonymous": None, "admin": admin}
    s["teacher"] = api.member(org, admin, "teacher", five)
    api.ok("PUT", f"/organizations/{org}/classes/{five}/teaching", s["teacher"]["access_token"],
           json={"subjects": ["Математика"]})
    s["pupil"] = api.member(org, admin, "student", five)
    s["pupil_other_class"] = api.member(org, admin, "student", six)
    s["removed"] = api.member(org, admin, "student", five)
    for child, parent in (("pupil", "parent"), ("pupil_other_class", "other_parent")):
        token = api.ok("GET", "/me/parent-invite", s[child]["access_token"])["token"]
        s[parent] = api.person("Родителев", "Пётр", "1980-02-02", "male")
        api.ok("POST", f"/parent-invites/{token}/confirmation", s[parent]["access_token"], status=201,
               json={"consent": True})
    other_org, s["other_admin"] = api.organization("Школа другая", "Калуга")
    other_class = api.ok("POST", f"/organizations/{other_org}/classes", s["other_admin"]["access_token"],
                         status=201, json={"name": "5А", "start_year": 2025, "end_year": 2032})["class_id"]
    s["other_pupil"] = api.member(other_org, s["other_admin"], "student", other_class)
    ids = {role: api.ok("GET", "/me", session["access_token"])["user_id"] for role, session in s.items() if session}
    for role in ("teacher", "pupil", "pupil_other_class", "removed", "parent", "other_parent"):
        member_of_messaging(api, s[role], org)

    teacher, pupil = s["teacher"]["access_token"], s["pupil"]["access_token"]
    chat = api.ok("POST", "/chats", teacher, status=201, json={
        "organization_id": org, "name": "Кружок", "member_ids": [ids["pupil"], ids["removed"]]})["chat_id"]
    api.ok("POST", f"/chats/{chat}/messages", pupil, status=201, json={"text": "Вопрос"})              # seq 0
    api.ok("POST", f"/chats/{chat}/messages", teacher, status=201, json={                           # seq 1
        "poll": {"question": "Когда?", "options": ["Пн", "Вт"]}})
    attachment = api.ok("POST", f"/chats/{chat}/attachments", pupil, status=201, data={"kind": "file"},
                        files={"file": ("notes.txt", b"conspect", "text/plain")})["attachment_id"]
    api.ok("POST", f"/chats/{chat}/messages", pupil, status=201, json={"attachment_ids": [attachment]})
    chat_token = api.ok("POST", f"/chats/{chat}/invite", teacher, status=201)["token"]
    report = api.ok("POST", f"/chats/{chat}/messages/1/reports", pupil, status=201, json={"reason": "Спам"})
    call = api.ok("POST", "/calls", teacher, status=201, json={"chat_id": chat})["call_id"]
    document = api.ok("POST", f"/organizations/{org}/documents", t, status=201, data={"title": "Устав"},
                      files={"file": ("charter.txt", b"charter", "text/plain")})["document_id"]
    article = api.ok("POST", f"/organizations/{org}/articles", t, status=201,
                     json={"title": "О школе", "html": "<p>Мы</p>"})["article_id"]
    channel = api.ok("POST", f"/organizations/{org}/channels", t, status=201, json={"name": "Новости"})["channel_id"]
    invite = api.ok("POST", f"/organizations/{org}/invites", t, status=201,
                    json={"role": "student", "class_id": six, "validity": "1d"})["invite_id"]
    applicant = api.sign_in()
    ids["applicant"] = applicant["user_id"]
    api.ok("POST", f"/organizations/{org}/join-requests", applicant["access_token"], status=201,
           json={"message": "Хочу учиться"})
    application = api.ok("POST", "/organization-applications", status=201, json={
        "name": "Заявка матрицы", "kind": "school", "country": "RU", "city": "Калуга",
        "admin_phone": api.new_phone()})["application_id"]
    session = [x for x in api.ok("GET", "/me/sessions", pupil) if x["current"]][0]["session_id"]

    api.ok("DELETE", f"/organizations/{org}/members/{ids['removed']}", t, status=204)
    eventually(lambda: ids["removed"] not in api.ok("GET", f"/chats/{chat}", teacher)["member_ids"],
               what="the removed pupil to leave the school's chat")
    return {"sessions": s, "ids": ids, "org": org, "five": five, "chat_id": chat, "call_id": call,
            "chat_token": chat_token, "params": {
                "organization_id": org, "class_id": five, "chat_id": chat, "call_id": call,
                "attachment_id": attachment, "document_id": document, "article_id": article,
                "channel_id": channel, "invite_id": invite, "report_id": report["report_id"],
                "application_id": application, "session_id": session, "child_id": ids["pupil"],
                "parent_id": ids["parent"], "provider_id": str(uuid.uuid4()), "lesson_id": str(uuid.uuid4()),
                "external_lesson_id": "lesson-1", "external_org_id": "org-1", "fmt": "svg",
                "challenge_id": str(uuid.uuid4()), "token": chat_token, "user_id": ids["pupil"]}}


def endpoints(api) -> set[tuple[str, str]]:
    """Every endpoint with path parameters, from the gateway's own OpenAPI document."""
    spec = requests.get(f"{api.stack.gateway_url}/openapi.json", timeout=15).json()
    found = set()
    for path, operations in spec["paths"].items():
        short = path.removeprefix("/api/v1")
        if "{" in short:
            found |= {(method.upper(), short) for method in operations if method in ("get", "post", "put", "patch",
                                                                                       "delete")}
    return found


def test_every_role_reaches_only_what_it_may_authorization_matrix(api, world):
    rows = table(world)
    listed = set(rows) | set(PUBLIC)
    unlisted = endpoints(api) - listed
    assert not unlisted, f"endpoints neither in the matrix nor public: {sorted(unlisted)}"
    leaks, wrong, checked = [], [], 0
    for (method, path), row in sorted(rows.items()):
        params = {**world["params"], **row.params}
        url = re.sub(r"{(\w+)}", lambda m, p=params: p[m.group(1)], path)
        probe = row.probe if row.probe is not None else method == "GET"
        for role in ROLES:
            allowed = role in row.allowed
            if allowed and not probe:
                continue
            session = world["sessions"][role]
            kwargs: dict = {}
            if row.json is not None:
                kwargs["json"] = row.json
            if row.form is not None:
                kwargs["data"] = row.form
                kwargs["files"] = {"file": ("x.txt", b"x", "text/plain")}
            response = api.call(method, url, session["access_token"] if session else None, **kwargs)
            checked += 1
            assert response.status_code < 500, (method, path, role, response.status_code, response.text)
            body = response.json() if response.headers.get("content-type", "").startswith("application/json") \
                else None
            code = body.get("error", {}).get("code") if isinstance(body, dict) else None
            if allowed and not response.ok:
                wrong.append((method, path, role, response.status_code, code))
            elif not allowed and response.ok:
                leaks.append((method, path, role, response.status_code))
            elif not allowed and (code or "").startswith("request.") and code != "request.conflict":
                wrong.append((method, path, role, response.status_code, code))  # refused for its form only
    print(f"authorization matrix: {len(ROLES)} roles x {len(rows)} endpoints = {len(ROLES) * len(rows)} cells, "
          f"{checked} calls, {len(PUBLIC)} public endpoints, {len(leaks)} leaks")
    assert leaks == [], f"leaks: {leaks}"
    assert wrong == [], f"allowed roles refused, or refusals for the request's form only: {wrong}"
