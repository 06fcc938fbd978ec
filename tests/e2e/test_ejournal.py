"""The e-journal integration end to end, with the simulated regional e-journals
running as their own process: an operator registers two regions' journals;
people link their accounts through the journal's OAuth sign-in (from the
platform's side and from the journal's); a whole school's roster and week of
timetable arrive by signed webhooks and end in the right chats with the right
members; every refusal is checked (EJ-1..EJ-4, CH-2)."""

from __future__ import annotations

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import requests

from tests.e2e.test_messaging import error
from tests.helpers import eventually, metric
from tools.devstack.infra import free_port
from tools.ejournal_sim.fixture import build_school
from tools.ejournal_sim.webhooks import WebhookSender, sign

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def journal(platform, api):
    """Regions 16 and 77 simulated; both registered by the operator; region 16 wired to its webhook URL."""
    port = free_port()
    platform.start_ejournal_sim(port, "16,77")
    platform.wait_healthy(["ejournal-sim"])
    sim = f"http://127.0.0.1:{port}"
    operator = api.operator()["access_token"]
    providers = {}
    for region in ("16", "77"):
        providers[region] = api.ok("POST", "/operator/ejournal-providers", operator, status=201, json={
            "region": region, "name": f"Электронная школа {uuid.uuid4().hex[:6]}", "base_url": f"{sim}/r/{region}",
            "client_id": f"sfera-{region}", "client_secret": "sim-client-secret"})
    p16 = providers["16"]
    requests.put(f"{sim}/r/16/admin/platform", timeout=5, json={
        "provider_id": p16["provider_id"], "webhook_url": p16["webhook_url"], "webhook_secret": p16["webhook_secret"],
        "link_url": f"{platform.gateway_url}/ejournal/link"}).raise_for_status()
    yield {"sim": sim, "providers": providers, "operator": operator, "school": build_school("16"),
           "sender": WebhookSender(p16["webhook_url"], p16["webhook_secret"])}
    platform.stop_process("ejournal-sim")


def link(api, journal, sourced_id: str, session: dict | None = None, hint: str | None = None,
         finisher: dict | None = None) -> Any:
    """A person signs in to the platform, then to the e-journal, and comes back linked (EJ-1). With ``finisher``,
    the journal's answer comes back to another signed-in account (a forwarded address): its response."""
    session = session or api.sign_in()
    provider_id = journal["providers"]["16"]["provider_id"]
    started = api.ok("POST", "/ejournal/links", session["access_token"], status=201,
                     json={"provider_id": provider_id, "login_hint": hint})
    authorize = urlparse(started["authorize_url"])
    params = {k: v[0] for k, v in parse_qs(authorize.query).items()}
    form = requests.get(started["authorize_url"], timeout=10)
    assert form.status_code == 200 and "Вход" in form.text
    params.pop("login_hint", None)
    back = requests.post(f"{authorize.scheme}://{authorize.netloc}{authorize.path}", allow_redirects=False,
                         timeout=10, data={**params, "login": sourced_id,
                                           "password": journal["school"].password(sourced_id)})
    assert back.status_code == 302, back.text
    # Back to the web client's page, which hands the journal's answer to the API as this does (signed in).
    page = urlparse(back.headers["Location"])
    assert page.path == "/ejournal/callback", page
    linked = api.call("GET", f"/ejournal/callback?{page.query}", (finisher or session)["access_token"])
    if finisher is not None:
        return linked
    assert linked.status_code == 200, linked.text
    assert linked.json()["external_person_id"] == sourced_id
    return session


def signed(journal, body: bytes, ts: int | None = None, secret: str | None = None) -> dict:
    stamp = str(int(time.time()) if ts is None else ts)
    return {"Content-Type": "application/json", "X-Sfera-Timestamp": stamp,
            "X-Sfera-Signature": sign(secret or journal["providers"]["16"]["webhook_secret"], stamp, body)}


def test_providers_of_several_regions_and_refused_webhooks(api, journal):
    someone = api.sign_in()["access_token"]
    assert [p["region"] for p in api.ok("GET", "/ejournal/providers?region=77", someone)] == ["77"]
    assert {p["region"] for p in api.ok("GET", "/ejournal/providers", someone)} >= {"16", "77"}
    assert error(api.call("POST", "/operator/ejournal-providers", someone, json={
        "region": "50", "name": "x", "base_url": "http://x", "client_id": "c", "client_secret": "s"})) == (
        403, "operator.required")
    # EJ-1, SC-2: a journal's region is a federal subject's code, checked as an organization's is
    for made_up in ("98", "16/77", ""):
        refused = api.call("POST", "/operator/ejournal-providers", journal["operator"], json={
            "region": made_up, "name": "x", "base_url": "http://x", "client_id": "c", "client_secret": "s"})
        assert error(refused) == (400, "region.unknown"), made_up
        assert refused.json()["error"]["details"]["fields"] == {"region": "Unknown region."}
    assert error(api.call("GET", "/ejournal/providers?region=98", someone)) == (400, "region.unknown")
    url = journal["providers"]["16"]["webhook_url"].removeprefix(api.base)
    sender = journal["sender"]
    body = sender.body("orgs.upserted", [journal["school"].org], "e2e-refusals-1")
    for headers, status, code in (
            ({**signed(journal, body), "X-Sfera-Signature": "v1=" + "0" * 64}, 401, "webhook.bad_signature"),
            (signed(journal, body, secret="another-secret"), 401, "webhook.bad_signature"),
            (signed(journal, body, ts=int(time.time()) - 600), 401, "webhook.stale"),
            ({**signed(journal, body), "X-Sfera-Timestamp": "soon"}, 401, "webhook.bad_timestamp")):
        assert error(api.call("POST", url, data=body, headers=headers)) == (status, code)
    unknown = "/ejournal/webhooks/" + "0" * 8 + "-0000-0000-0000-" + "0" * 12
    assert error(api.call("POST", unknown, data=body, headers=signed(journal, body))) == (404, "provider.not_found")
    malformed = json.dumps({"event_id": "x", "type": "users.upserted", "occurred_at": "now",
                            "records": [{"sourcedId": "u"}]}).encode()
    response = api.call("POST", url, data=malformed, headers=signed(journal, malformed))
    assert error(response) == (400, "webhook.malformed") and response.json()["error"]["details"]["errors"]
    first = api.ok("POST", url, data=body, headers=signed(journal, body), status=202)
    again = api.ok("POST", url, data=body, headers=signed(journal, body), status=202)
    assert (first["duplicate"], again["duplicate"], again["delivery_id"]) == (False, True, first["delivery_id"])
    detail_url = f"/operator/ejournal-providers/{journal['providers']['16']['provider_id']}"
    detail = eventually(lambda: (d := api.ok("GET", detail_url, journal["operator"]))["orgs"] and d,
                        what="the org seen by the bridge")
    assert detail["orgs"] == {journal["school"].org["sourcedId"]: journal["school"].org["name"]}


def test_a_whole_school_by_webhooks_ends_in_the_right_chats_EJ_1_EJ_3_EJ_4_CH_2(api, journal):
    school = journal["school"]
    first_class = school.classes[0]["sourcedId"]
    class_teacher = school.class_teacher(first_class)
    students = school.students_of(first_class)[:8]
    parents = [p for s in students for p in school.user(s)["agents"]]
    teachers = [t["sourcedId"] for t in school.of_role("teacher")]
    with ThreadPoolExecutor(4) as pool:
        # Every teacher links before the school arrives; some students and parents after it.
        sessions = dict(zip(teachers, pool.map(lambda t: link(api, journal, t), teachers), strict=True))
        started = time.monotonic()
        responses = journal["sender"].push_school(school)
        assert {r.status_code for r in responses} == {202}
        sessions.update(zip(students + parents, pool.map(lambda p: link(api, journal, p), students + parents),
                            strict=True))

    def chats_of(sourced_id):
        return [c["chat"] for c in api.ok("GET", "/chats", sessions[sourced_id]["access_token"])]

    expected_subject_chats = {(lesson["class"], lesson["subject"], lesson["teacher"]) for lesson in school.lessons}
    expected = len(expected_subject_chats) + 3 * len(school.classes)

    def all_chats():
        seen = {c["chat_id"]: c for t in teachers for c in chats_of(t) if c["kind"] != "organization"}
        return seen if len(seen) >= expected else None

    chats = eventually(all_chats, timeout=240, interval=2, what=f"{expected} journal chats")
    elapsed = time.monotonic() - started
    assert len(chats) == expected, "no copies"
    user = {s: sessions[s]["user_id"] for s in sessions}
    title = school.classes[0]["title"]
    by_name = {c["name"]: c for c in chats.values()}
    # The class teacher's three (EJ-3): with the students, the parents, the colleagues teaching the class.
    colleagues = {lesson["teacher"] for lesson in school.lessons if lesson["class"] == first_class} | {
        e["user"] for e in school.enrollments if e["class"] == first_class and e["role"] == "teacher"}
    wanted = {f"{title} — ученики": {class_teacher, *students}, f"{title} — родители": {class_teacher, *parents},
              f"{title} — учителя": colleagues}

    def members_right():
        return all(set(api.ok("GET", f"/chats/{by_name[name]['chat_id']}",
                              sessions[class_teacher]["access_token"])["member_ids"]) == {user[p] for p in people}
                   for name, people in wanted.items())

    eventually(members_right, timeout=60, what="the class teacher's three chats with their members")
    # Subject chats (EJ-4): the teacher and the class's linked students; nobody invited anyone (CH-2).
    for _, subject, teacher in sorted(x for x in expected_subject_chats if x[0] == first_class):
        chat = by_name[f"{title} · {subject}"]  # one teacher per subject in a class of this school
        members = set(api.ok("GET", f"/chats/{chat['chat_id']}", sessions[teacher]["access_token"])["member_ids"])
        assert members == {user[teacher], *(user[s] for s in students)}
        assert chat["system"]
    assert error(api.call("POST", f"/chats/{by_name[f'{title} — ученики']['chat_id']}/members",
                          sessions[class_teacher]["access_token"], json={"member_ids": [user[parents[0]]]})) == (
        403, "chat.system_managed")
    print(f"\nwhole school: {len(chats)} chats in {elapsed:.1f} s")
    # EJ-7: the journal's lesson page opens the lesson's chat, for its members only.
    lesson = next(x for x in school.lessons if x["class"] == first_class)
    lesson_chat = f"/ejournal/providers/{journal['providers']['16']['provider_id']}/lessons/{lesson['sourcedId']}/chat"
    assert api.ok("GET", lesson_chat, sessions[students[0]]["access_token"])["chat_id"] == by_name[
        f"{title} · {lesson['subject']}"]["chat_id"]
    assert error(api.call("GET", lesson_chat, api.sign_in()["access_token"])) == (403, "chat.members_only")
    # EJ-2: the link confirmed the teachers' profiles, not the students'.
    assert eventually(lambda: api.ok("GET", "/me", sessions[class_teacher]["access_token"])["teacher_confirmed"],
                      what="the class teacher's profile confirmed")
    assert api.ok("GET", "/me", sessions[students[0]]["access_token"])["teacher_confirmed"] is False

    # Replaying the whole inbox defines the same chats again: no copies, no member changes.
    provider_url = f"/operator/ejournal-providers/{journal['providers']['16']['provider_id']}"
    replay = api.ok("POST", f"{provider_url}/replay", journal["operator"], status=202)

    def finished():
        last = api.ok("GET", provider_url, journal["operator"])["last_replay"]
        return last if last["replay_id"] == replay["replay_id"] and last["state"] == "finished" else None

    done = eventually(finished, timeout=240, interval=1, what="the replay to finish")
    assert done["deliveries"] >= len(responses) and done["chats_sent"] == expected
    assert len(all_chats()) == expected and members_right()


def test_binding_a_whole_school_answers_at_once_and_resyncs_in_the_background_EJ_2_issue_17(api, journal):
    """The bind of a 1,000-pupil school used to run its whole resync inside the RPC (503 at 10 s); now it answers
    with the binding recorded and the resync pending, and its progress shows on the binding until done."""
    school = journal["school"]
    provider_id = journal["providers"]["16"]["provider_id"]
    org = school.org["sourcedId"]
    binding_url = f"/operator/ejournal-providers/{provider_id}/schools/{org}"
    first_class = school.classes[0]["sourcedId"]
    class_teacher = school.class_teacher(first_class)
    pupils = school.students_of(first_class)[:3]
    people = [class_teacher, *pupils, school.user(pupils[0])["agents"][0]]
    with ThreadPoolExecutor(4) as pool:
        assert {r.status_code for r in journal["sender"].push_school(school)} == {202}  # repeats change nothing
        sessions = dict(zip(people, pool.map(lambda p: link(api, journal, p), people), strict=True))
    teacher_token = sessions[class_teacher]["access_token"]
    students_chat_name = f"{school.classes[0]['title']} — ученики"

    def students_chat():
        return next((c["chat"] for c in api.ok("GET", "/chats", teacher_token)
                     if c["chat"]["name"] == students_chat_name), None)

    eventually(students_chat, timeout=240, interval=2, what="the class teacher's chat with the students")
    organization_id, _ = api.organization("Школа из журнала", region="16")

    started = time.monotonic()
    response = api.call("PUT", binding_url, journal["operator"], json={"organization_id": organization_id})
    answered = time.monotonic() - started
    assert response.status_code == 202, response.text
    assert answered < 2, f"the bind took {answered:.1f} s: its resync runs in the background"
    bound = response.json()
    assert (bound["organization_id"], bound["external_org_id"], bound["resync"]["state"]) == (
        organization_id, org, "pending")

    seen_states = set()

    def resynced():
        now = api.ok("GET", binding_url, journal["operator"])
        seen_states.add(now["resync"]["state"])
        assert now["resync"]["state"] != "failed", now
        return now if now["resync"]["resync_id"] == bound["resync"]["resync_id"] and now["resync"][
            "state"] == "done" else None

    done = eventually(resynced, timeout=300, interval=0.5, what="the bind's resync to finish")["resync"]
    print(f"\nbind answered in {answered * 1000:.0f} ms; resync states seen {sorted(seen_states)}: {done}")
    assert done["classes_done"] == done["classes_total"] == len(school.classes)
    assert done["people_done"] == done["people_total"] >= len(people) and done["error"] is None
    # The provider's detail lists the binding with the same progress.
    detail = api.ok("GET", f"/operator/ejournal-providers/{provider_id}", journal["operator"])
    assert [(b["external_org_id"], b["resync"]["state"]) for b in detail["bindings"]] == [(org, "done")]
    # EJ-2: every linked person of the school now belongs to the organization, with the journal's role.
    for person, session in sessions.items():
        eventually(lambda s=session: any(o["organization"]["organization_id"] == organization_id
                                         for o in api.ok("GET", "/me/organizations", s["access_token"])),
                   what=f"{person} in the bound organization")
    # The chats are still each one chat, with the same members (the resync sent what changed, made no copies).
    chats = [c["chat"] for c in api.ok("GET", "/chats", teacher_token) if c["chat"]["kind"] != "organization"]
    assert len({c["name"] for c in chats}) == len(chats)
    members = set(api.ok("GET", f"/chats/{students_chat()['chat_id']}", teacher_token)["member_ids"])
    assert {sessions[p]["user_id"] for p in (class_teacher, *pupils)} <= members  # (others linked earlier too)
    # Bad input: a school not bound, an unknown e-journal.
    assert error(api.call("GET", f"/operator/ejournal-providers/{provider_id}/schools/nope",
                          journal["operator"])) == (404, "binding.not_found")
    assert error(api.call("GET", f"/operator/ejournal-providers/{'0' * 8}-0000-0000-0000-{'0' * 12}/schools/{org}",
                          journal["operator"])) == (404, "provider.not_found")


def test_a_binds_resync_killed_mid_way_resumes_when_the_bridge_comes_back_not_doubled_issue_17(api, platform,
                                                                                                journal):
    """SIGKILL of the bridge while a bind's resync runs: the request's event was not acked, so the bridge that comes
    back runs it again from the last step recorded -- every class counted once, not from the start again."""
    school = journal["school"]
    provider_id = journal["providers"]["16"]["provider_id"]
    org = school.org["sourcedId"]
    binding_url = f"/operator/ejournal-providers/{provider_id}/schools/{org}"
    consumed = f"http://127.0.0.1:{platform.metrics_port('ejournal_bridge')}/metrics"
    applied = lambda: metric(consumed, "sfera_events_consumed_total",  # noqa: E731
                             type="ejournal_bridge.WebhookAccepted.v1", outcome="applied")
    before = applied()
    fresh = sum(not r.json()["duplicate"] for r in journal["sender"].push_school(school))
    eventually(lambda: applied() - before >= fresh, timeout=240, interval=1, what="the school's deliveries applied")
    caught = None
    for attempt in range(4):  # each bind to another organization changes every chat: a resync with work to do
        organization_id, _ = api.organization(f"Школа из журнала {attempt}", region="16")
        bound = api.ok("PUT", binding_url, journal["operator"], status=202, json={"organization_id": organization_id})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            now = api.ok("GET", binding_url, journal["operator"])["resync"]
            if now["state"] == "running" and 0 < now["classes_done"] < now["classes_total"]:
                caught = now
                break
            if now["state"] in ("done", "failed"):
                break
            time.sleep(0.02)
        if caught:
            break
    assert caught, "never caught the resync running"
    platform.stop_process("ejournal_bridge", kill=True)
    platform.start_service("ejournal_bridge")
    platform.wait_healthy(["ejournal_bridge"])

    def done():
        now = api.ok("GET", binding_url, journal["operator"])["resync"]
        return now if now["state"] == "done" else None

    finished = eventually(done, timeout=240, interval=0.5, what="the resync resumed and finished")
    print(f"\nkilled at {caught['classes_done']}/{caught['classes_total']} classes; finished {finished}")
    assert finished["resync_id"] == bound["resync"]["resync_id"] == caught["resync_id"]
    # Resumed after the last step recorded: every class once (from the start again it would count them twice).
    assert finished["classes_done"] == finished["classes_total"] == len(school.classes)
    assert finished["people_done"] == finished["people_total"] and finished["error"] is None


def test_linking_from_the_journal_side_and_unlinking_EJ_1(api, platform, journal):
    school = journal["school"]
    student = school.students_of(school.classes[1]["sourcedId"])[0]
    hop = requests.get(f"{journal['sim']}/r/16/connect", params={"person": student}, allow_redirects=False,
                       timeout=5)
    target = urlparse(hop.headers["Location"])
    assert hop.status_code == 302 and target.path == "/ejournal/link"
    query = {k: v[0] for k, v in parse_qs(target.query).items()}
    assert query == {"provider_id": journal["providers"]["16"]["provider_id"], "login_hint": student}
    session = link(api, journal, student, hint=query["login_hint"])
    (mine,) = api.ok("GET", "/me/ejournal-links", session["access_token"])
    assert (mine["external_person_id"], mine["role"], mine["region"]) == (student, "student", "16")
    api.ok("DELETE", f"/me/ejournal-links/{mine['provider_id']}", session["access_token"], status=204)
    assert api.ok("GET", "/me/ejournal-links", session["access_token"]) == []
    # A sign-in that was not started here, or is used twice, links nobody.
    token = session["access_token"]
    assert error(api.call("GET", "/ejournal/callback?state=forged&code=x", token)) == (404, "link.not_found")
    assert error(api.call("GET", "/ejournal/callback?error=access_denied", token)) == (400, "link.denied")
    assert error(api.call("GET", "/ejournal/callback?state=forged&code=x")) == (401, "auth.required")


def test_a_forwarded_link_address_links_nobody_but_the_account_that_started_it_EJ_1(api, journal):
    """An outside audit: the journal's answer was recorded for the account that started the attempt, whoever
    brought it back, with no sign-in asked. A stranger started a link, sent its address to a pupil, the pupil signed
    in at the journal, and the stranger became that pupil here (class chats, timetable; the pupil's link cut)."""
    school = journal["school"]
    pupil = school.students_of(school.classes[2]["sourcedId"])[0]
    child = link(api, journal, pupil)
    stranger = api.sign_in()
    refused = link(api, journal, pupil, session=stranger, finisher=child)  # the child brings back the answer
    assert error(refused) == (403, "link.not_yours")
    assert api.ok("GET", "/me/ejournal-links", stranger["access_token"]) == []
    (kept,) = api.ok("GET", "/me/ejournal-links", child["access_token"])
    assert kept["external_person_id"] == pupil

