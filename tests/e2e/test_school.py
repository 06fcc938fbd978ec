"""School end to end through the gateway: organizations, classes, invite links,
join requests, members, materials, with authorization at every step."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest

from tests.helpers import eventually

pytestmark = pytest.mark.e2e


def error(response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


@pytest.fixture(scope="module")
def school(api):
    """One school with a class, its admin, a teacher and two students in 5А."""
    org, admin = api.organization("Лицей №7", "Самара")
    t = admin["access_token"]
    five = api.ok("POST", f"/organizations/{org}/classes", t, status=201,
                  json={"name": "5А", "start_year": 2025, "end_year": 2032})["class_id"]
    six = api.ok("POST", f"/organizations/{org}/classes", t, status=201,
                 json={"name": "6Б", "start_year": 2024, "end_year": 2031})["class_id"]
    teacher = api.member(org, admin, "teacher", last_name="Учителева", first_name="Ольга", birth_date="1975-01-01",
                         sex="female")
    students = [api.member(org, admin, "student", five, last_name=n, first_name="Ученик", birth_date="2015-01-01",
                           sex="male") for n in ("Аксенов", "Борисов")]
    other = api.member(org, admin, "student", six)
    return {"org": org, "admin": admin, "five": five, "six": six, "teacher": teacher, "students": students,
            "other": other}


def test_operators_approve_applications_and_search_finds_the_school_SC_1_SC_2(api, school):
    stranger = api.sign_in()
    assert error(api.call("GET", "/operator/applications", stranger["access_token"])) == (403, "operator.required")
    for n in range(3):
        api.organization(f"Школа №{n + 10}", "Сызрань")
    page1 = api.ok("GET", "/organizations?country=RU&city=Сызрань&limit=2", stranger["access_token"])
    page2 = api.ok("GET", f"/organizations?country=RU&city=Сызрань&limit=2&cursor={page1['next_cursor']}",
                   stranger["access_token"])
    assert [o["name"] for o in page1["items"] + page2["items"]] == ["Школа №10", "Школа №11", "Школа №12"]
    assert page2["next_cursor"] is None
    bad = api.call("GET", "/organizations?country=Russia&city=X", stranger["access_token"])
    assert error(bad) == (400, "request.invalid")


def test_search_by_words_of_the_name_and_the_read_model_rebuilt_by_one_command_SC_2(api, platform, school):
    """Issue #17: search is full text over school's read model (PostgreSQL: Russian word forms); the read
    model rebuilt from scratch by ``python -m school.readmodel rebuild`` answers the same."""
    t = api.sign_in()["access_token"]
    api.organization("Гимназия имени Державина", "Тамбов")

    def found(query: str) -> list[str]:
        return [o["name"] for o in api.ok("GET", f"/organizations?country=RU&{query}", t)["items"]]

    assert found("q=гимназии державина") == ["Гимназия имени Державина"]  # no city: the whole country
    assert found("q=держ&city=Тамбов") == ["Гимназия имени Державина"]
    assert found("q=лицей самара") == ["Лицей №7"]
    members = api.ok("GET", f"/organizations/{school['org']}/members", school["admin"]["access_token"])
    rebuilt = subprocess.run([sys.executable, "-m", "school.readmodel", "rebuild"], env=platform.env(),
                             capture_output=True, text=True, timeout=120)
    assert rebuilt.returncode == 0 and "rebuilt up to notification" in rebuilt.stdout, rebuilt.stderr
    assert found("q=гимназии державина") == ["Гимназия имени Державина"]
    assert api.ok("GET", f"/organizations/{school['org']}/members", school["admin"]["access_token"]) == members


def test_an_organizations_region_is_given_validated_changed_and_searched_by_in_both_languages_SC_1_SC_2(api):
    """SC-2 (issue #17): search by name, city and region: an application names the region (a federal subject's
    code), the operator sees it, search finds the school by the region's Russian or English name and filters by
    its code, hits answer it; the admin changes it (RO-2); a code that is no region is 400 region.unknown."""
    stranger = api.sign_in()["access_token"]
    bad = api.call("POST", "/organization-applications", json={
        "name": "Школа", "kind": "school", "country": "RU", "city": "Казань", "admin_phone": api.new_phone(),
        "region": "99"})
    assert error(bad) == (400, "region.unknown") and bad.json()["error"]["details"]["fields"] == {
        "region": "Unknown region."}
    application = api.ok("POST", "/organization-applications", status=201, json={
        "name": "Гимназия Заречная", "kind": "school", "country": "RU", "city": "Чистополь",
        "admin_phone": api.new_phone(), "region": "16"})
    assert application["region"] == "16"
    waiting = api.ok("GET", "/operator/applications", api.operator()["access_token"])
    assert [a["region"] for a in waiting if a["application_id"] == application["application_id"]] == ["16"]
    org, admin = api.organization("Лицей Заречный", "Чистополь", region="16")
    assert api.ok("GET", f"/organizations/{org}", stranger)["region"] == "16"

    def found(query: str) -> list[tuple[str, str | None]]:
        return [(o["name"], o["region"]) for o in api.ok("GET", f"/organizations?country=RU&{query}",
                                                          stranger)["items"]]

    assert found("q=заречный татарстан") == found("q=Заречный Tatarstan") == [("Лицей Заречный", "16")]
    assert found("q=заречный&region=16") == [("Лицей Заречный", "16")]
    assert found("q=заречный&region=77") == [] and found("q=заречный москва") == []
    assert error(api.call("GET", "/organizations?country=RU&region=99", stranger)) == (400, "region.unknown")
    t = admin["access_token"]
    assert error(api.call("PATCH", f"/organizations/{org}", t, json={"region": "Москва"})) == (400, "region.unknown")
    assert api.ok("PATCH", f"/organizations/{org}", t, json={"region": "77"})["region"] == "77"
    assert found("q=заречный москва") == found("q=заречный&region=77") == [("Лицей Заречный", "77")]
    assert found("q=заречный татарстан") == []
    assert api.ok("PATCH", f"/organizations/{org}", t, json={"region": None})["region"] is None


def test_the_read_model_keeps_up_in_the_background_without_a_query(api, platform, school):
    """Issue #17: school's service applies its log to the read model every second (SFERA_READ_MODEL_INTERVAL),
    so the first query after a burst of writes finds little left to apply. Nothing here lists members or
    searches: only that green thread can move the position up to the join."""
    api.member(school["org"], school["admin"], "student", school["five"], last_name="Фоновая")
    script = ("import time\n"
              "from school.application import SchoolApplication\n"
              "from shared.store import make_application\n"
              "model = make_application(SchoolApplication, 'school').read_model\n"
              "head, deadline = model.head(), time.monotonic() + 20\n"
              "while model.position() < head and time.monotonic() < deadline:\n"
              "    time.sleep(0.2)\n"
              "print(model.position() >= head, model.position(), head)\n")
    kept = subprocess.run([sys.executable, "-c", script], env=platform.env(), capture_output=True, text=True,
                          timeout=60)
    assert kept.stdout.startswith("True"), kept.stdout + kept.stderr


def test_the_operator_cli_lists_and_approves_applications_SC_1(api, platform):
    application = api.ok("POST", "/organization-applications", status=201, json={
        "name": "Колледж связи", "kind": "college", "country": "RU", "city": "Пенза", "admin_phone": api.new_phone()})
    env = platform.env()  # the console opens school's store itself: no RPC, no flag (issue #12)
    listed = subprocess.run([sys.executable, "-m", "school.operator", "list"], env=env, capture_output=True,
                            text=True, timeout=60)
    assert application["application_id"] in listed.stdout
    approved = subprocess.run([sys.executable, "-m", "school.operator", "approve", application["application_id"]],
                              env=env, capture_output=True, text=True, timeout=60)
    assert approved.returncode == 0 and "approved" in approved.stdout
    organization_id = approved.stdout.split("organization ")[1].split()[0]
    assert api.ok("GET", f"/organizations/{organization_id}", api.sign_in()["access_token"])["name"] == "Колледж связи"
    again = subprocess.run([sys.executable, "-m", "school.operator", "approve", application["application_id"]],
                           env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 1 and "application.decided" in again.stderr
    reconciled = subprocess.run([sys.executable, "-m", "school.operator", "reconcile-members"], env=env,
                                capture_output=True, text=True, timeout=60)
    assert reconciled.returncode == 0 and " membership(s) changed" in reconciled.stdout, reconciled.stderr


def test_invite_links_preview_qr_and_their_refusals_SC_5_SC_6(api, school):
    t = school["admin"]["access_token"]
    invite = api.ok("POST", f"/organizations/{school['org']}/invites", t, status=201,
                    json={"role": "student", "class_id": school["five"], "validity": "1h", "max_uses": 1})
    assert invite["url"].endswith(invite["token"]) and invite["expires_at"]
    preview = api.ok("GET", f"/invites/{invite['token']}")                       # SC-6, before signing in
    assert (preview["organization"]["name"], preview["class_name"], preview["role"]) == ("Лицей №7", "5А", "student")
    png = api.call("GET", f"/invites/{invite['token']}/qr.png")
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    newcomer = api.sign_in()
    joined = api.ok("POST", f"/invites/{invite['token']}/membership", newcomer["access_token"], status=201)
    assert (joined["roles"], joined["class_id"]) == (["student"], school["five"])
    late = api.sign_in()
    assert error(api.call("POST", f"/invites/{invite['token']}/membership", late["access_token"])) == (
        410, "invite.exhausted")
    revoked = api.ok("POST", f"/organizations/{school['org']}/invites", t, status=201,
                     json={"role": "student", "class_id": school["five"]})
    api.ok("DELETE", f"/invites/{revoked['invite_id']}", t, status=204)
    assert error(api.call("GET", f"/invites/{revoked['token']}")) == (410, "invite.revoked")
    assert error(api.call("GET", f"/invites/{'0' * 64}")) == (404, "invite.not_found")
    junior = api.call("POST", f"/organizations/{school['org']}/invites", t,
                      json={"role": "student", "class_id": school["five"], "email_registration_allowed": True})
    assert error(junior) == (400, "invite.email_for_juniors_only")


def test_a_junior_registers_by_email_with_the_schools_invite_and_joins_ID_4(api, platform, school):
    t = school["admin"]["access_token"]
    second = api.ok("POST", f"/organizations/{school['org']}/classes", t, status=201,
                    json={"name": "2В", "start_year": 2025, "end_year": 2035})["class_id"]
    invite = api.ok("POST", f"/organizations/{school['org']}/invites", t, status=201,
                    json={"role": "student", "class_id": second, "email_registration_allowed": True})
    email = f"kid-{uuid.uuid4().hex[:6]}@example.org"
    issued = api.ok("POST", "/auth/email-codes", status=201, json={"email": email, "invite_token": invite["token"]})
    code = api.inbox_code("email", email)
    kid = api.ok("POST", f"/auth/email-codes/{issued['challenge_id']}/confirmation", json={"code": code})
    joined = api.ok("POST", f"/invites/{invite['token']}/membership", kid["access_token"], status=201)
    assert joined["class_id"] == second


def test_a_teacher_cannot_do_an_admins_work_RO_2_RO_3(api, school):
    t = school["teacher"]["access_token"]
    org = school["org"]
    assert error(api.call("POST", f"/organizations/{org}/classes", t,
                          json={"name": "7А", "start_year": 2023, "end_year": 2030})) == (
        403, "organization.role_required")
    assert error(api.call("PATCH", f"/organizations/{org}", t, json={"address": "x"})) == (
        403, "organization.role_required")
    assert error(api.call("POST", f"/organizations/{org}/invites", t, json={"role": "teacher"})) == (
        403, "organization.role_required")
    assert error(api.call("GET", f"/organizations/{org}/join-requests", t)) == (403, "organization.role_required")
    # RO-3, SC-7: a teacher invites pupils into a class once they say they teach it.
    assert error(api.call("POST", f"/organizations/{org}/invites", t,
                          json={"role": "student", "class_id": school["five"]})) == (403, "invite.not_your_class")
    api.ok("PUT", f"/organizations/{org}/classes/{school['five']}/teaching", t, json={"subjects": ["Математика"]})
    student_invite = api.ok("POST", f"/organizations/{org}/invites", t, status=201,
                            json={"role": "student", "class_id": school["five"]})
    assert student_invite["role"] == "student"


def test_members_list_by_role_and_no_one_reads_another_school_SC_9(api, school):
    org = school["org"]
    everyone = api.ok("GET", f"/organizations/{org}/members?limit=200", school["admin"]["access_token"])["items"]
    assert {school["other"]["user_id"], school["teacher"]["user_id"]} <= {m["user_id"] for m in everyone}
    student = school["students"][0]["access_token"]
    seen = api.ok("GET", f"/organizations/{org}/members", student)["items"]
    ids = {m["user_id"] for m in seen}
    assert school["students"][1]["user_id"] in ids and school["other"]["user_id"] not in ids
    assert all("class_id" not in m for m in seen)
    assert error(api.call("GET", f"/organizations/{org}/members?class_id={school['six']}", student)) == (
        403, "organization.class_only")
    other_org, other_admin = api.organization("Соседняя школа", "Самара")
    assert error(api.call("GET", f"/organizations/{org}/members", other_admin["access_token"])) == (
        403, "organization.members_only")
    assert error(api.call("GET", f"/organizations/{org}/documents", other_admin["access_token"])) == (
        403, "organization.members_only")


def test_admins_appoint_admins_change_and_remove_members_RO_7_SC_8(api, school):
    org, t = school["org"], school["admin"]["access_token"]
    teacher = school["teacher"]["user_id"]
    api.ok("POST", f"/organizations/{org}/admins", t, status=201, json={"user_id": teacher})
    assert "admin" in api.ok("GET", "/me/organizations", school["teacher"]["access_token"])[0]["membership"]["roles"]
    moving = api.member(org, school["admin"], "student", school["five"])
    changed = api.ok("PUT", f"/organizations/{org}/members/{moving['user_id']}", t,
                     json={"roles": ["student"], "class_id": school["six"]})
    assert changed["class_id"] == school["six"]
    api.ok("DELETE", f"/organizations/{org}/members/{moving['user_id']}", t, status=204)
    assert error(api.call("GET", f"/organizations/{org}/classes", moving["access_token"])) == (
        403, "organization.members_only")


def test_join_requests_added_or_hidden_SC_3(api, school):
    org, t = school["org"], school["admin"]["access_token"]
    alice, bob = api.person("Алиева", "Алия"), api.person("Бобров", "Борис", "2014-01-01", "male")
    api.ok("POST", f"/organizations/{org}/join-requests", alice["access_token"], status=201,
           json={"message": "Я из 5А"})
    api.ok("POST", f"/organizations/{org}/join-requests", bob["access_token"], status=201, json={})
    expected = {(alice["user_id"], "Алиева"), (bob["user_id"], "Бобров")}
    eventually(lambda: {(r["user_id"], r["last_name"]) for r in api.ok("GET", f"/organizations/{org}/join-requests",
                                                                       t)} >= expected,
               what="both requests, with the names school learns from identity's ProfileUpdated")
    api.ok("POST", f"/organizations/{org}/join-requests/{alice['user_id']}/acceptance", t, status=201,
           json={"role": "student", "class_id": school["five"]})
    api.ok("POST", f"/organizations/{org}/join-requests/{bob['user_id']}/hiding", t, status=204)
    again = api.call("POST", f"/organizations/{org}/join-requests", bob["access_token"], json={})
    assert error(again) == (403, "join_request.hidden")
    assert api.ok("GET", f"/organizations/{org}/classes", alice["access_token"])


def test_documents_upload_download_and_limits_SC_10(api, school):
    org, t = school["org"], school["admin"]["access_token"]
    content = b"%PDF-1.4 timetable" + bytes(range(256))
    document = api.ok("POST", f"/organizations/{org}/documents", t, status=201, data={"title": "Расписание"},
                      files={"file": ("timetable.pdf", content, "application/pdf")})
    assert document["size"] == len(content)
    student = school["students"][0]["access_token"]
    assert [d["title"] for d in api.ok("GET", f"/organizations/{org}/documents", student)][:1] == ["Расписание"]
    download = api.call("GET", f"/documents/{document['document_id']}/content", student)
    assert download.status_code == 200 and download.content == content
    assert "timetable.pdf" in download.headers["Content-Disposition"]
    _, stranger_admin = api.organization("Чужая школа", "Самара")
    assert error(api.call("GET", f"/documents/{document['document_id']}/content",
                          stranger_admin["access_token"])) == (403, "organization.members_only")
    exe = api.call("POST", f"/organizations/{org}/documents", t, data={"title": "x"},
                   files={"file": ("x.exe", b"MZ", "application/x-msdownload")})
    assert error(exe) == (400, "document.type_not_allowed")
    big = api.call("POST", f"/organizations/{org}/documents", t, data={"title": "big"},
                   files={"file": ("big.pdf", b"0" * 300_000, "application/pdf")})
    assert error(big) in ((400, "file.too_large"), (400, "document.too_large"), (413, "request.too_large"))
    assert error(api.call("POST", f"/organizations/{org}/documents", student, data={"title": "mine"},
                          files={"file": ("m.pdf", b"%PDF", "application/pdf")})) == (403,
                                                                                   "organization.role_required")


def test_articles_with_cover_and_channels_SC_11_SC_12(api, school):
    org, t = school["org"], school["admin"]["access_token"]
    png = b"\x89PNG\r\n\x1a\n" + b"cover"
    cover = api.ok("POST", "/images", t, status=201, data={"organization_id": org},
                   files={"file": ("c.png", png, "image/png")})
    article = api.ok("POST", f"/organizations/{org}/articles", t, status=201, json={
        "title": "Олимпиада", "html": "<p>Итоги<script>alert(1)</script></p>", "cover_image_id": cover["image_id"]})
    assert "script" not in article["html"]
    student = school["students"][1]["access_token"]
    assert article["article_id"] not in [a["article_id"] for a in api.ok("GET", f"/organizations/{org}/articles",
                                                                         student)]
    api.ok("POST", f"/articles/{article['article_id']}/publication", t)
    assert article["article_id"] in [a["article_id"] for a in api.ok("GET", f"/organizations/{org}/articles",
                                                                     student)]
    assert api.call("GET", f"/articles/{article['article_id']}/cover", student).content == png
    channel = api.ok("POST", f"/organizations/{org}/channels", t, status=201, json={"name": "Новости"})
    api.ok("POST", f"/channels/{channel['channel_id']}/posts", t, status=201, json={"text": "Завтра линейка"})
    assert error(api.call("POST", f"/channels/{channel['channel_id']}/posts", student, json={"text": "Ура"})) == (
        403, "organization.role_required")
    assert [p["text"] for p in api.ok("GET", f"/channels/{channel['channel_id']}/posts", student)["items"]] == [
        "Завтра линейка"]


def test_the_teachers_dashboard_SC_7_SC_13(api, school):
    t = school["teacher"]["access_token"]
    api.ok("PUT", f"/organizations/{school['org']}/classes/{school['five']}/teaching", t,
           json={"subjects": ["Математика"]})
    board = api.ok("GET", "/me/dashboard", t)
    assert [(c["class_name"], c["subjects"]) for c in board["classes"]] == [("5А", ["Математика"])]
    assert board["lessons_under_way"] == []  # no lesson's call under way
    # Recent chats come from messaging: the school's chat the teacher is in.
    eventually(lambda: any(c["kind"] == "organization" and c["organization_id"] == school["org"]
                           for c in api.ok("GET", "/me/dashboard", t)["recent_chats"]),
               what="the school's chat among the teacher's recent chats")


def test_parents_become_members_through_their_children_RO_5(api, school):
    child = school["students"][0]
    eventually(lambda: api.call("GET", "/me/parent-invite", child["access_token"]).status_code == 200,
               what="identity to learn from school's MemberJoined that this is a student")
    token = api.ok("GET", "/me/parent-invite", child["access_token"])["token"]
    parent = api.person("Аксенова", "Мама", "1985-01-01", "female")
    api.ok("POST", f"/parent-invites/{token}/confirmation", parent["access_token"], status=201,
           json={"consent": True})

    def parent_membership():
        orgs = api.ok("GET", "/me/organizations", parent["access_token"])
        return [o["membership"] for o in orgs if o["organization"]["organization_id"] == school["org"]]

    (membership,) = eventually(parent_membership, what="school to make the parent a member")
    assert membership["roles"] == ["parent"] and membership["class_id"] == school["five"]
    classmates = {m["user_id"] for m in api.ok("GET", f"/organizations/{school['org']}/members",
                                               parent["access_token"])["items"]}
    assert child["user_id"] in classmates and school["other"]["user_id"] not in classmates


def test_a_parent_of_siblings_in_two_classes_belongs_to_both_RO_5_PL_7(api, school):
    """Siblings in 5А and 6Б, one parent following both links: a parent in both classes, in their own membership,
    in what they may see, and in the admin's list of each class (was: the first child's class only, and 403
    organization.class_only for the second child's class)."""
    parent = api.person("Борисова", "Мама", "1984-02-02", "female")
    for child in (school["students"][1], school["other"]):
        eventually(lambda c=child: api.call("GET", "/me/parent-invite", c["access_token"]).status_code == 200,
                   what="identity to learn from school's MemberJoined that this is a student")
        token = api.ok("GET", "/me/parent-invite", child["access_token"])["token"]
        api.ok("POST", f"/parent-invites/{token}/confirmation", parent["access_token"], status=201,
               json={"consent": True})

    def both_classes():
        orgs = api.ok("GET", "/me/organizations", parent["access_token"])
        found = [o["membership"] for o in orgs if o["organization"]["organization_id"] == school["org"]]
        return found if found and set(found[0]["parent_classes"]) == {school["five"], school["six"]} else None

    (membership,) = eventually(both_classes, what="school to make the parent a parent in both children's classes")
    assert membership["roles"] == ["parent"] and membership["class_id"] == school["five"]
    me = api.ok("GET", "/me", parent["access_token"])["user_id"]
    sixth = {m["user_id"] for m in api.ok("GET", f"/organizations/{school['org']}/members?class_id={school['six']}",
                                          parent["access_token"])["items"]}
    assert school["other"]["user_id"] in sixth
    for klass in ("five", "six"):
        listed = {m["user_id"]: m for m in api.ok(
            "GET", f"/organizations/{school['org']}/members?class_id={school[klass]}",
            school["admin"]["access_token"])["items"]}
        assert set(listed[me]["parent_classes"]) == {school["five"], school["six"]}


def test_one_article_and_one_channel_by_id_for_the_readers_of_the_list_SC_11_SC_12(api, school):
    """GET /articles/{id} and /channels/{id}: the web client read the whole list to find one (issue #17). The same
    rules as the lists: a draft only its author and admins; another school's member is refused; an id grants
    nothing."""
    org, t = school["org"], school["admin"]["access_token"]
    teacher, student = school["teacher"]["access_token"], school["students"][0]["access_token"]
    _, stranger = api.organization("Школа за рекой", "Самара")
    draft = api.ok("POST", f"/organizations/{org}/articles", teacher, status=201,
                   json={"title": "Черновик", "html": "<p>Скоро</p>"})
    path = f"/articles/{draft['article_id']}"
    assert api.ok("GET", path, teacher)["title"] == "Черновик"
    assert api.ok("GET", path, t)["published_at"] is None                      # an admin reads every draft
    assert error(api.call("GET", path, student)) == (404, "article.not_found")  # a reader: no such article yet
    api.ok("POST", f"{path}/publication", teacher)
    read = api.ok("GET", path, student)
    assert (read["article_id"], read["title"], read["html"]) == (draft["article_id"], "Черновик", "<p>Скоро</p>")
    assert read["published_at"] is not None
    assert error(api.call("GET", path, stranger["access_token"])) == (403, "organization.members_only")
    assert error(api.call("GET", f"/articles/{uuid.uuid4()}", student)) == (404, "article.not_found")

    channel = api.ok("POST", f"/organizations/{org}/channels", t, status=201, json={"name": "Объявления"})
    assert api.ok("GET", f"/channels/{channel['channel_id']}", student) == channel
    assert error(api.call("GET", f"/channels/{channel['channel_id']}", stranger["access_token"])) == (
        403, "organization.members_only")
    assert error(api.call("GET", f"/channels/{uuid.uuid4()}", student)) == (404, "channel.not_found")
