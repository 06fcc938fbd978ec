"""Issue #13, through the gateway only: the product's rules hold for schools, calls and
the e-journal's lessons as pupils, parents and teachers meet them (SC-4, SC-13, CA-8,
EJ-4, EJ-5). The journal's side is the simulator's school (region 16), its roster and
timetable pushed by signed webhooks."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from tests.e2e.test_ejournal import link
from tests.e2e.test_messaging import error
from tests.helpers import eventually
from tools.devstack.infra import free_port
from tools.ejournal_sim.fixture import build_school
from tools.ejournal_sim.webhooks import WebhookSender

pytestmark = pytest.mark.e2e


def test_a_class_ending_this_year_is_graduated_at_once_and_takes_no_invites_SC_4(api):
    org, admin = api.organization("Школа выпуска", "Самара")
    token = admin["access_token"]
    this_year = datetime.now(timezone.utc).year  # after 1 July: its classes ending this year have graduated
    leaving = api.ok("POST", f"/organizations/{org}/classes", token, status=201,
                     json={"name": "11А", "start_year": this_year - 11, "end_year": this_year})
    staying = api.ok("POST", f"/organizations/{org}/classes", token, status=201,
                     json={"name": "10А", "start_year": this_year - 10, "end_year": this_year + 1})
    assert (leaving["graduated"], staying["graduated"]) == (True, False)
    listed = {c["name"]: c["graduated"] for c in api.ok("GET", f"/organizations/{org}/classes", token)}
    assert listed == {"11А": True, "10А": False}
    refused = api.call("POST", f"/organizations/{org}/invites", token,
                       json={"role": "student", "class_id": leaving["class_id"], "validity": "1d"})
    assert error(refused) == (409, "class.graduated")
    api.ok("POST", f"/organizations/{org}/invites", token, status=201,
           json={"role": "student", "class_id": staying["class_id"], "validity": "1d"})


@pytest.fixture(scope="module")
def journal(platform, api):
    """Region 16's simulated journal, registered under its own name, and a small piece of its school:
    one class, two of its subjects with their teachers, two pupils and a parent."""
    port = free_port()
    platform.start_ejournal_sim(port, "16")
    platform.wait_healthy(["ejournal-sim"])
    operator = api.operator()["access_token"]
    provider = api.ok("POST", "/operator/ejournal-providers", operator, status=201, json={
        "region": "16", "name": f"ЭШ правил {uuid.uuid4().hex[:6]}", "base_url": f"http://127.0.0.1:{port}/r/16",
        "client_id": "sfera-16", "client_secret": "sim-client-secret"})
    school = build_school("16")
    klass = school.classes[0]
    by_subject: dict[str, str] = {}
    for lesson in school.lessons:
        if lesson["class"] == klass["sourcedId"]:
            by_subject.setdefault(lesson["subject"], lesson["teacher"])
    (subject_a, teacher_a), (subject_b, teacher_b) = next(
        (a, b) for a in by_subject.items() for b in by_subject.items() if a[1] != b[1])
    pupils = school.students_of(klass["sourcedId"])[:2]
    parent = school.user(pupils[0])["agents"][0]
    yield {"provider": provider, "providers": {"16": provider}, "school": school, "class": klass, "pupils": pupils,
           "parent": parent,
           "a": (subject_a, teacher_a), "b": (subject_b, teacher_b), "operator": operator,
           "sender": WebhookSender(provider["webhook_url"], provider["webhook_secret"])}
    platform.stop_process("ejournal-sim")


def push(journal, lessons: list[dict]) -> None:
    school, klass, sender = journal["school"], journal["class"], journal["sender"]
    people = {*journal["pupils"], journal["parent"], journal["a"][1], journal["b"][1]}
    for type_, records in (
            ("orgs.upserted", [school.org]), ("classes.upserted", [klass]),
            ("users.upserted", [u for u in school.users if u["sourcedId"] in people]),
            ("enrollments.upserted", [e for e in school.enrollments
                                      if e["class"] == klass["sourcedId"] and e["user"] in people]),
            ("lessons.upserted", lessons)):
        if records:
            assert sender.send(type_, records).status_code == 202


def lesson_record(journal, n: int, subject_teacher: tuple[str, str], starts: datetime, remote: bool) -> dict:
    return {"sourcedId": f"rules-lesson-{n}", "class": journal["class"]["sourcedId"], "subject": subject_teacher[0],
            "teacher": subject_teacher[1], "startsAt": starts.isoformat(),
            "endsAt": (starts + timedelta(minutes=45)).isoformat(), "remote": remote, "published": remote}


def test_lessons_are_found_started_joined_and_a_subject_chat_call_waits_for_them_EJ_4_EJ_5_SC_13_CA_8(api, journal):
    subject_a, _ = journal["a"]
    teacher = link(api, journal, journal["a"][1])
    pupil, other_pupil = (link(api, journal, p) for p in journal["pupils"])
    parent = link(api, journal, journal["parent"])
    now = datetime.now(timezone.utc)
    under_way = lesson_record(journal, 1, journal["a"], now - timedelta(minutes=5), remote=True)
    tomorrow = lesson_record(journal, 2, journal["b"], now + timedelta(days=1), remote=False)
    push(journal, [under_way, tomorrow])

    # EJ-5, SC-13: people find their lessons; the id is the one the lesson's call takes.
    def lessons_of(session, **query):
        return api.ok("GET", "/me/lessons", session["access_token"], params=query)

    mine = eventually(lambda: len(lessons_of(pupil)) == 2 and lessons_of(pupil), what="the pupil's week")
    assert [(x["external_lesson_id"], x["subject"], x["call"], x["actions"]) for x in mine] == [
        ("rules-lesson-1", subject_a, None, []), ("rules-lesson-2", journal["b"][0], None, [])]
    assert [x["external_lesson_id"] for x in lessons_of(parent)] == ["rules-lesson-1", "rules-lesson-2"]
    (taught,) = lessons_of(teacher)
    assert (taught["teaching"], taught["published"], taught["actions"]) == (True, True, ["start"])
    lesson_id = taught["lesson_id"]
    assert mine[0]["lesson_id"] == lesson_id
    assert lessons_of(pupil, **{"from": (now + timedelta(hours=2)).isoformat()})[0]["external_lesson_id"] == (
        "rules-lesson-2")
    assert error(api.call("GET", "/me/lessons", pupil["access_token"],
                          params={"from": now.isoformat(), "to": (now - timedelta(hours=1)).isoformat()})) == (
        400, "lessons.invalid_range")
    assert error(api.call("GET", f"/lessons/{uuid.uuid4()}/call", pupil["access_token"])) == (404, "lesson.not_found")
    eventually(lambda: error(api.call("GET", f"/lessons/{lesson_id}/call", pupil["access_token"])) == (
        404, "call.not_started"), what="calls to know the published lesson, its call not started")

    call = api.ok("POST", f"/lessons/{lesson_id}/call", teacher["access_token"], status=201)
    joinable = eventually(lambda: (x := lessons_of(pupil)[0])["call"] and x, what="the lesson's call in the week")
    assert (joinable["call"]["call_id"], joinable["actions"]) == (call["call_id"], ["join"])
    assert lessons_of(teacher)[0]["actions"] == ["join"]
    api.ok("POST", f"/calls/{call['call_id']}/join", pupil["access_token"])
    for session in (teacher, pupil):
        board = api.ok("GET", "/me/dashboard", session["access_token"])
        assert [x["lesson_id"] for x in board["lessons_under_way"]] == [lesson_id]
        assert any(c["kind"] == "subject" for c in board["recent_chats"])

    # CA-8: a call in the subject chat of the lesson under way is that subject's next lesson: it waits.
    lesson_chat = (f"/ejournal/providers/{journal['provider']['provider_id']}/lessons/rules-lesson-1/chat")
    chat = api.ok("GET", lesson_chat, pupil["access_token"])
    assert chat["kind"] == "subject" and chat["subject"] == subject_a
    busy = api.call("POST", "/calls", other_pupil["access_token"], json={"chat_id": chat["chat_id"]})
    assert error(busy) == (409, "call.subject_busy") and busy.json()["error"]["details"] == {
        "call_id": call["call_id"]}
    api.ok("POST", f"/calls/{call['call_id']}/end", teacher["access_token"])
    adhoc = api.ok("POST", "/calls", other_pupil["access_token"], status=201, json={"chat_id": chat["chat_id"]})
    assert error(api.call("POST", f"/lessons/{lesson_id}/call", teacher["access_token"])) == (
        409, "call.subject_busy")
    api.ok("POST", f"/calls/{adhoc['call_id']}/end", other_pupil["access_token"])
    assert api.ok("GET", "/me/dashboard", pupil["access_token"])["lessons_under_way"] == []


def test_a_subject_chat_exists_from_the_timetable_and_its_teacher_enters_on_linking_EJ_4(api, journal):
    """Pupils who linked are in the subject chat before its teacher links; the teacher enters on linking."""
    pupil = link(api, journal, journal["pupils"][0])
    push(journal, [lesson_record(journal, 3, journal["b"], datetime.now(timezone.utc) + timedelta(days=2), False)])
    lesson_chat = f"/ejournal/providers/{journal['provider']['provider_id']}/lessons/rules-lesson-3/chat"
    chat = eventually(lambda: (r := api.call("GET", lesson_chat, pupil["access_token"])).status_code == 200
                      and r.json(), what="the subject chat from the timetable")
    assert chat["subject"] == journal["b"][0] and pupil["user_id"] in chat["member_ids"]
    teacher = link(api, journal, journal["b"][1])
    eventually(lambda: teacher["user_id"] in api.ok("GET", lesson_chat, pupil["access_token"])["member_ids"],
               what="the teacher to enter the chat on linking")


def test_linking_makes_people_members_of_the_bound_school_EJ_2(api, journal):
    """The journal's school bound to an organization: its linked teacher and pupil belong to it, with the
    journal's roles, and have its chat on their dashboard."""
    org, admin = api.organization("Школа из журнала", "Казань")
    push(journal, [])
    teacher = link(api, journal, journal["a"][1])
    provider_id = journal["provider"]["provider_id"]
    api.ok("PUT", f"/operator/ejournal-providers/{provider_id}/schools/{journal['school'].org['sourcedId']}",
           journal["operator"], status=202, json={"organization_id": org})  # the resync runs in the background
    pupil = link(api, journal, journal["pupils"][1])

    def roles_in_org(session):
        return [o["membership"]["roles"] for o in api.ok("GET", "/me/organizations", session["access_token"])
                if o["organization"]["organization_id"] == org]

    assert eventually(lambda: roles_in_org(teacher), what="the linked teacher in the bound school") == [["teacher"]]
    assert eventually(lambda: roles_in_org(pupil), what="the linked pupil in the bound school") == [["student"]]
    members = {m["user_id"]: m["roles"] for m in api.ok("GET", f"/organizations/{org}/members",
                                                        admin["access_token"])["items"]}
    assert members[pupil["user_id"]] == ["student"] and members[teacher["user_id"]] == ["teacher"]
    eventually(lambda: any(c["kind"] == "organization" and c["organization_id"] == org
                           for c in api.ok("GET", "/me/dashboard", pupil["access_token"])["recent_chats"]),
               what="the school's chat on the pupil's dashboard")
