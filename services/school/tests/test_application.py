"""School's application against every store (memory, SQLite, PostgreSQL).
Each test names the docs/rules.md rule it checks."""

from __future__ import annotations

import dataclasses
import threading
import uuid
from datetime import date, datetime, timedelta, timezone

import pytest

from school import handlers
from school.application import CONSOLE, SchoolApplication, sanitize_html
from school.domain import Membership, Organization, OrganizationApplication, Roster
from school.outbox import to_integration_events
from shared.contracts import make_event
from shared.contracts.api.school import (
    AcceptJoinRequest,
    ChangeMember,
    CreateClass,
    CreateInvite,
    DraftArticle,
    EditArticle,
    SubmitApplication,
    UpdateOrganization,
)
from shared.errors import Conflict, Forbidden, Gone, Invalid, NotFound, TooManyRequests
from shared.store import make_application
from shared.store.testing import racing, run_together

from .conftest import School

pytestmark = pytest.mark.integration
NOW = datetime(2026, 9, 1, 8, 0, tzinfo=timezone.utc)


def published(app: SchoolApplication, event_type: str | None = None) -> list:
    events = []
    for notification in app.process_recorder.select_notifications(start=1, limit=100_000):
        for t, data, subject in to_integration_events(app.mapper.to_domain_event(notification)):
            events.append(make_event(t, data, event_id=f"school:{notification.id}", subject=subject))
    return [e for e in events if event_type is None or e.type == event_type]


# -- people ---------------------------------------------------------------------------------


def test_user_registered_is_recorded_once(school):
    user_id = uuid.uuid4()
    event = make_event("identity.UserRegistered.v1", {"user_id": user_id, "phone": "+79001234567",
                                                      "registered_via": "phone", "registered_at": NOW},
                       event_id="identity:1:UserRegistered.v1")
    assert handlers.on_user_registered(school.app, event) is True
    assert handlers.on_user_registered(school.app, event) is False
    assert school.app.get_person(user_id).version == 1


# -- SC-1, SC-2 organizations ------------------------------------------------------------------


def test_an_application_is_approved_by_an_operator_and_its_phone_becomes_admin_SC_1(school):
    operator = school.operator()
    admin = school.user("+79001112233")
    application = school.app.submit_application(None, SubmitApplication("Гимназия №2", "school", "ru", "Казань",
                                                                         "8 900 111-22-33", None))
    with pytest.raises(Forbidden) as info:
        school.app.approve_application(admin, application.id)
    assert info.value.code == "operator.required"
    assert [a.id for a in school.app.pending_applications(operator)] == [application.id]
    organization = school.app.approve_application(operator, application.id)
    assert school.app.membership(organization.id, admin).roles == ["admin"]
    assert school.app.pending_applications(operator) == []
    with pytest.raises(Conflict):
        school.app.approve_application(operator, application.id)
    assert [e.data["name"] for e in published(school.app, "school.OrganizationRegistered.v1")] == ["Гимназия №2"]
    assert [e.data["user_id"] for e in published(school.app, "school.AdminAppointed.v1")] == [admin]


def test_nobody_but_an_operator_or_the_console_decides_applications_SC_1(school):
    """No flag skips the check: without an operator's id (or the console's own object) it is refused."""
    application = school.app.submit_application(None, SubmitApplication("Лицей", "school", "RU", "Тверь",
                                                                         "+79004445599", None))
    for actor in (None, uuid.uuid4(), "console", str(CONSOLE)):
        for attempt in (lambda a: school.app.pending_applications(a),
                        lambda a: school.app.approve_application(a, application.id),
                        lambda a: school.app.reject_application(a, application.id, "no")):
            with pytest.raises(Forbidden) as info:
                attempt(actor)
            assert info.value.code == "operator.required"
    assert [a.id for a in school.app.pending_applications(CONSOLE)] == [application.id]
    school.app.approve_application(CONSOLE, application.id)
    assert school.app.repository.get(application.id).status == "approved"


def test_teachers_invite_pupils_only_to_the_classes_they_teach_RO_3_SC_5_SC_7(school):
    org, admin = school.organization()
    five, six = school.klass(org, admin, "5А"), school.klass(org, admin, "6Б")
    teacher = school.member(org, admin, "teacher")
    with pytest.raises(Forbidden) as info:
        school.app.create_invite(teacher, CreateInvite(org, "student", six, "1d", None, False))
    assert (info.value.code, info.value.details) == ("invite.not_your_class", {"class_id": str(six)})
    school.app.assign_self(teacher, org, five, ["Математика"])                  # SC-7: they teach 5А now
    assert school.app.create_invite(teacher, CreateInvite(org, "student", five, "1d", None, False))[0].class_id == five
    with pytest.raises(Forbidden):
        school.app.create_invite(teacher, CreateInvite(org, "student", six, "1d", None, False))
    invited_to_six = school.member(org, admin, "teacher", six)                  # the class their invite named
    invite, _ = school.app.create_invite(invited_to_six, CreateInvite(org, "student", six, "1d", None, False))
    assert invite.class_id == six
    assert school.app.create_invite(admin, CreateInvite(org, "student", six, "1d", None, False))[0].class_id == six


def test_a_membership_as_stored_now_with_its_version_for_a_consumer_that_missed_an_event_CH_1(school):
    """messaging asks this when an event of a membership comes before an earlier one of it: the state is what the
    membership's events publish (roles, class, taught classes), its version the one their ``sequence`` counts."""
    org, admin = school.organization()
    six, seven = school.klass(org, admin, "6Б"), school.klass(org, admin, "7В")
    teacher = school.member(org, admin, "teacher", six)
    assert school.app.membership_state(org, teacher) == {
        "version": 1, "active": True, "roles": ["teacher"], "class_id": str(six), "parent_classes": [],
        "subjects": {str(six): []}, "left_version": 0}
    school.app.assign_self(teacher, org, seven, ["Физика"])
    assert school.app.membership_state(org, teacher)["subjects"] == {str(six): [], str(seven): ["Физика"]}
    assert school.app.membership_state(org, teacher)["version"] == 2
    school.app.remove_member(admin, org, teacher)
    assert school.app.membership_state(org, teacher) == {
        "version": 3, "active": False, "roles": [], "class_id": None, "parent_classes": [], "subjects": {},
        "left_version": 3}
    assert school.app.membership_state(org, uuid.uuid4())["version"] == 0
    token = school.app.create_invite(admin, CreateInvite(org, "teacher", None, "7d", None, False))[1]
    school.app.join_by_invite(token, teacher)  # back: active again, and when they last left is still said
    assert school.app.membership_state(org, teacher) | {"roles": None, "subjects": None} == {
        "version": 4, "active": True, "roles": None, "class_id": None, "parent_classes": [], "subjects": None,
        "left_version": 3}


def test_the_class_a_teachers_invite_named_is_published_as_taught_SC_6_SC_7(school):
    """School counts the class a teacher's invite named as taught (SC-7, ``Membership.teaches``); its events must
    say so, for messaging puts a teacher in a class's chats by the classes their events list as taught: a teacher
    invited into 6Б was in no chat of 6Б. Published with no subjects stated yet; a pupil's class is not taught."""
    org, admin = school.organization()
    six, seven = school.klass(org, admin, "6Б"), school.klass(org, admin, "7В")
    invited = school.member(org, admin, "teacher", six)
    school.app.assign_self(invited, org, seven, ["Физика"])
    pupil = school.member(org, admin, "student", six)
    [joined] = [e.data for e in published(school.app, "school.MemberJoined.v1") if e.data["user_id"] == invited]
    assert joined["subjects"] == {str(six): []}
    [joined] = [e.data for e in published(school.app, "school.MemberJoined.v1") if e.data["user_id"] == pupil]
    assert joined["subjects"] == {}
    school.app.change_member(admin, ChangeMember(org, invited, ["teacher", "admin"], six))
    [changed] = [e.data for e in published(school.app, "school.MemberRoleChanged.v1") if e.data["user_id"] == invited]
    assert changed["subjects"] == {str(six): [], str(seven): ["Физика"]}
    desk = {c["class_name"]: c["subjects"] for c in school.app.dashboard(invited)["classes"]}
    assert desk == {"6Б": [], "7В": ["Физика"]}  # SC-13: the teacher's desktop lists the class too


def test_the_admin_phone_may_register_after_the_approval_SC_1(school):
    application = school.app.submit_application(None, SubmitApplication("Колледж", "college", "RU", "Тверь",
                                                                         "+79004445566", None))
    organization = school.app.approve_application(CONSOLE, application.id)
    later = school.user("+79004445566")
    assert school.app.membership(organization.id, later).has("admin")


def test_applications_can_be_rejected_SC_1(school):
    application = school.app.submit_application(None, SubmitApplication("X", "school", "RU", "Омск", "+79004445567",
                                                                         None))
    for reason in ("   ", "x" * 2001):  # the console's (and any RPC caller's) reason, not only the API's body
        with pytest.raises(Invalid) as refused:
            school.app.reject_application(CONSOLE, application.id, reason)
        assert refused.value.code == "application.invalid_reason"
    school.app.reject_application(CONSOLE, application.id, "Not a real school")
    assert school.app.repository.get(application.id).status == "rejected"
    with pytest.raises(Invalid):
        school.app.submit_application(None, SubmitApplication("", "university", "Russia", "", "+79004445567", None))


def test_organizations_are_found_by_country_and_city_with_paging_SC_2(school):
    ids = [school.organization(city="Самара", name=f"Школа №{n:02d}")[0] for n in range(5)]
    school.organization(city="Казань")
    first, cursor = school.app.search("ru", "  самара ", None, 2)
    second, cursor2 = school.app.search("RU", "Самара", cursor, 2)
    third, end = school.app.search("RU", "Самара", cursor2, 2)
    assert [h["name"] for h in first + second + third] == [f"Школа №{n:02d}" for n in range(5)]
    assert end is None and {h["organization_id"] for h in first + second + third} == {str(i) for i in ids}
    assert school.app.search("RU", "Уфа", None, 10) == ([], None)


def test_only_admins_edit_the_organization_and_moves_are_found_in_the_new_city_RO_2(school):
    org, admin = school.organization(city="Самара")
    klass = school.klass(org, admin)
    teacher = school.member(org, admin, "teacher")
    student = school.member(org, admin, "student", klass)
    for outsider in (teacher, student):
        with pytest.raises(Forbidden):
            school.app.update_organization(outsider, UpdateOrganization(org, address="ул. Ленина, 1"))
    school.app.update_organization(admin, UpdateOrganization(org, city="Тольятти", address="ул. Ленина, 1",
                                                             settings={"student_dialogs_allowed": False}))
    assert school.app.search("RU", "Самара", None, 10)[0] == []
    assert [h["organization_id"] for h in school.app.search("RU", "Тольятти", None, 10)[0]] == [str(org)]
    updated = published(school.app, "school.OrganizationUpdated.v1")[-1].data
    assert updated["settings"] == {"student_dialogs_allowed": False}


def test_an_organization_carries_its_region_from_the_application_and_its_admin_changes_it_SC_1_SC_2_RO_2(school):
    """SC-2: a school is placed in its region (Russia: a federal subject's code), shown to the operator, carried
    by its events; an admin changes or clears it (RO-2); a code that is no region is refused (region.unknown)."""
    operator = school.operator()
    for country, bad in (("RU", "99"), ("RU", "Татарстан"), ("KZ", "16")):
        with pytest.raises(Invalid) as refused:
            school.app.submit_application(None, SubmitApplication("Лицей", "school", country, "Казань",
                                                                  "+79004445510", None, bad))
        assert refused.value.code == "region.unknown" and refused.value.details == {
            "fields": {"region": "Unknown region."}}
    application = school.app.submit_application(None, SubmitApplication("Лицей №1", "school", "ru", "Казань",
                                                                         "+79004445511", None, "16"))
    assert [a.region for a in school.app.pending_applications(operator)] == ["16"]
    organization = school.app.approve_application(operator, application.id)
    assert organization.region == "16"
    admin = school.user("+79004445511")
    assert published(school.app, "school.OrganizationRegistered.v1")[-1].data["region"] == "16"
    with pytest.raises(Invalid) as refused:
        school.app.update_organization(admin, UpdateOrganization(organization.id, region="100"))
    assert refused.value.code == "region.unknown"
    assert school.app.update_organization(admin, UpdateOrganization(organization.id, region="2")).region == "02"
    assert school.app.update_organization(admin, UpdateOrganization(organization.id, city="Уфа")).region == "02"
    assert published(school.app, "school.OrganizationUpdated.v1")[-1].data["region"] == "02"
    moved = school.app.update_organization(admin, UpdateOrganization(organization.id, country="KZ"))
    assert moved.region is None  # a region of another country is not kept
    cleared = school.app.update_organization(admin, UpdateOrganization(organization.id, country="RU", region="77"))
    assert school.app.update_organization(admin, UpdateOrganization(cleared.id, region=None)).region is None
    plain = school.app.submit_application(None, SubmitApplication("Школа", "school", "RU", "Омск", "+79004445512"))
    assert plain.region is None and school.app.approve_application(operator, plain.id).region is None


def test_organizations_stored_before_regions_are_read_changed_and_found_SC_2(school):
    """Events of version 1 (no region) are upcast: such an organization has none until its admin gives one."""
    admin = school.user("+79004445513")
    application = OrganizationApplication(name="Гимназия", kind="school", country="RU", city="Казань",
                                          admin_phone="+79004445513", submitted_by=None, note=None, region=None)
    organization = Organization(organization_id=uuid.uuid4(), name="Гимназия", kind="school", country="RU",
                                city="Казань", approved_by=None, region=None)
    old = []
    for event in application.collect_events() + organization.collect_events():
        stored = school.app.mapper.to_stored_event(event)
        state = school.app.mapper.transcoder.decode(stored.state)
        assert state.pop("class_version") == 2 and state.pop("region") is None
        old.append(dataclasses.replace(stored, state=school.app.mapper.transcoder.encode(state)))
    school.app.recorder.insert_events(old)
    assert school.app.repository.get(application.id).region is None
    assert school.app.organization(organization.id).region is None
    assert [h["region"] for h in school.app.search("RU", "Казань", None, 10)[0]] == [None]
    school.app.save(*school.app._join(organization.id, admin, "admin", None, "application"))
    school.app.update_organization(admin, UpdateOrganization(organization.id, region="16"))
    assert [h["region"] for h in school.app.search("RU", None, None, 10, q="татарстан")[0]] == ["16"]


# -- SC-4 classes -----------------------------------------------------------------------------------


def test_a_class_has_a_name_and_valid_years_SC_4(school):
    org, admin = school.organization()
    for bad in (("", 2024, 2031), ("5А", 2024, 2024), ("5А", 2024, 2040), ("5А", 1800, 1805), ("5\u202eА", 2024, 2031)):
        with pytest.raises(Invalid) as info:
            school.app.create_class(admin, CreateClass(org, *bad))
        assert info.value.code == "class.invalid"
    klass = school.klass(org, admin, "5А", 2024, 2031)
    created = published(school.app, "school.ClassCreated.v1")[-1].data
    assert (created["class_id"], created["name"], created["end_year"]) == (klass, "5А", 2031)


def test_classes_graduate_in_their_end_year_once_SC_4(school):
    org, admin = school.organization()
    leaving = school.klass(org, admin, "11А", 2015, 2026)
    staying = school.klass(org, admin, "10А", 2016, 2027)
    assert school.app.graduate_due(date(2026, 6, 30)) == 0
    assert school.app.graduate_due(date(2026, 7, 1)) == 1
    assert school.app.graduate_due(date(2026, 7, 2)) == 0  # idempotent
    assert school.app.repository.get(leaving).graduated and not school.app.repository.get(staying).graduated
    assert [e.data["class_id"] for e in published(school.app, "school.ClassGraduated.v1")] == [leaving]


def test_a_class_is_graduated_the_moment_its_end_year_comes_not_when_the_job_runs_SC_4(school):
    """Graduation is a fact of the date: views, invites and joins see it at once;
    an invite made before graduation admits nobody into the class afterwards."""
    org, admin = school.organization()
    school.app.clock = lambda: datetime(2026, 6, 30, 12, tzinfo=timezone.utc)
    leaving = school.klass(org, admin, "11А", 2015, 2026)
    _, token = school.app.create_invite(admin, CreateInvite(org, "student", leaving, "unlimited", None, False))
    school.app.join_by_invite(token, school.user())
    assert not school.app.class_graduated(school.app.repository.get(leaving))
    school.app.clock = lambda: datetime(2026, 7, 1, 0, 1, tzinfo=timezone.utc)  # no graduation job has run
    assert [school.app.class_graduated(c) for c in school.app.classes(admin, org)] == [True]
    with pytest.raises(Conflict) as refused:
        school.app.create_invite(admin, CreateInvite(org, "student", leaving, "1d", None, False))
    assert refused.value.code == "class.graduated"
    with pytest.raises(Conflict) as late:
        school.app.join_by_invite(token, school.user())
    assert late.value.code == "class.graduated"
    with pytest.raises(Conflict) as preview:
        school.app.usable_invite(token)
    assert preview.value.code == "class.graduated"
    school.app.request_to_join(requester := school.user(), org, None)
    with pytest.raises(Conflict) as accepted:
        school.app.accept_join_request(admin, AcceptJoinRequest(org, requester, "student", leaving))
    assert accepted.value.code == "class.graduated"
    pupil = school.member(org, admin, "student", school.klass(org, admin, "10А", 2020, 2027))
    with pytest.raises(Conflict) as moved:  # nor does an admin move anyone into it (SC-8, SC-9)
        school.app.change_member(admin, ChangeMember(org, pupil, ["student"], leaving))
    assert moved.value.code == "class.graduated"
    assert school.app.membership(org, pupil).class_id != leaving


def test_people_linked_to_a_bound_journal_school_become_its_members_EJ_2(school):
    org, admin = school.organization()
    teacher, pupil = school.user(), school.user()

    def told(user, role, orgs):
        return handlers.on_journal_memberships(school.app, make_event("ejournal_bridge.JournalMembershipsChanged.v1", {
            "user_id": user, "provider_id": uuid.uuid4(), "external_person_id": f"p-{user}", "role": role,
            "organization_ids": orgs, "changed_at": datetime.now(timezone.utc)}, event_id=f"ej:{uuid.uuid4()}"))

    assert told(teacher, "teacher", [org, uuid.uuid4()])  # an unknown organization is skipped
    assert told(pupil, "student", [org])
    assert told(pupil, "student", [org])  # told again: already a member, nothing changes
    mine = {o.id: m for o, m in school.app.my_organizations(pupil)}
    assert list(mine) == [org] and mine[org].roles == ["student"] and mine[org].class_id is None
    assert [m.roles for o, m in school.app.my_organizations(teacher)] == [["teacher"]]
    listed = {r["user_id"]: r["roles"] for r in school.app.members(admin, org)[0]}
    assert listed[str(pupil)] == ["student"] and listed[str(teacher)] == ["teacher"]
    joined = [e.data for e in published(school.app, "school.MemberJoined.v1") if e.data["via"] == "ejournal"]
    assert sorted(e["role"] for e in joined) == ["student", "teacher"]


def test_a_role_the_journal_gave_goes_when_the_journal_takes_it_back_EJ_2(school):
    """The bridge tells the whole set of a linked person's schools (``organization_ids``, per journal): a school no
    longer in it (the account was unlinked, another account is that person now, the journal moved them) takes back
    the role that journal gave there, with the parents who came through a pupil it was; a role the school gave
    (an invite) stays, and so does one another journal gave. Before, school only ever added: an account no longer
    that teacher stayed a teacher among the school's pupils. A report older than the last applied changes nothing."""
    org, admin = school.organization()
    other_org, other_admin = school.organization()
    journal, second_journal = uuid.uuid4(), uuid.uuid4()
    teacher, pupil, parent = school.user(), school.user(), school.user()
    at = datetime.now(timezone.utc)

    def told(user, role, orgs, provider=journal, when=None):
        return handlers.on_journal_memberships(school.app, make_event("ejournal_bridge.JournalMembershipsChanged.v1", {
            "user_id": user, "provider_id": provider, "external_person_id": f"p-{user}", "role": role,
            "organization_ids": orgs, "changed_at": when or datetime.now(timezone.utc)},
            event_id=f"ej:{uuid.uuid4()}"))

    told(teacher, "teacher", [org, other_org])
    told(pupil, "student", [org])
    handlers.on_parent_linked(school.app, parent_event("ParentLinked", parent, pupil, 51))
    assert school.app.membership(org, parent).has("parent")
    klass = school.klass(org, admin, "8Г")
    invited = school.member(org, admin, "teacher", klass)
    told(invited, "teacher", [org])  # a teacher already: the journal gave nothing here
    told(teacher, "teacher", [other_org])  # moved out of org by the journal
    assert school.app.membership(org, teacher) is None and school.app.membership(other_org, teacher).has("teacher")
    assert told(teacher, "teacher", [org, other_org], when=at) is True  # older than the last: changes nothing
    assert school.app.membership(org, teacher) is None
    told(pupil, "student", [])  # unlinked: their parent came through them and goes too
    assert school.app.membership(org, pupil) is None and school.app.membership(org, parent) is None
    told(invited, "teacher", [])
    assert school.app.membership(org, invited).has("teacher")  # the school's own invite stays
    told(teacher, "teacher", [other_org], provider=second_journal)
    told(teacher, "teacher", [], provider=journal)
    assert school.app.membership(other_org, teacher).has("teacher")  # the second journal still gives it
    staff = {m["user_id"] for m in school.app.members(admin, org)[0]}
    assert str(teacher) not in staff and str(pupil) not in staff
    # What the school gave too stays: a guardian the journal brought in who is a linked parent of a pupil here,
    # and a pupil the school then placed in a class by its own invite.
    guardian, kid = school.user(), school.member(org, admin, "student", klass)
    told(guardian, "parent", [org])
    handlers.on_parent_linked(school.app, parent_event("ParentLinked", guardian, kid, 52))
    told(guardian, "parent", [])
    assert school.app.membership(org, guardian).has("parent")
    placed = school.user()
    told(placed, "student", [org])
    _, token = school.app.create_invite(admin, CreateInvite(org, "student", klass, "7d", None, False))
    school.app.join_by_invite(token, placed)
    told(placed, "student", [])
    assert school.app.membership(org, placed).class_id == klass
    left = {e.data["user_id"] for e in published(school.app, "school.MemberLeft.v1")}
    assert {teacher, pupil, parent} <= left
    assert other_admin


# -- SC-5, SC-6 invite links -----------------------------------------------------------------------------


def test_invite_validity_presets_and_their_own_error_codes_SC_5(school):
    org, admin = school.organization()
    klass = school.klass(org, admin)
    invite, token = school.app.create_invite(admin, CreateInvite(org, "student", klass, "30m", None, False), now=NOW)
    assert invite.expires_at == NOW + timedelta(minutes=30)
    with pytest.raises(Gone) as expired:
        school.app.join_by_invite(token, school.user(), now=NOW + timedelta(minutes=31))
    assert expired.value.code == "invite.expired"
    unlimited, _ = school.app.create_invite(admin, CreateInvite(org, "student", klass, "unlimited", None, False),
                                            now=NOW)
    assert unlimited.expires_at is None
    once, once_token = school.app.create_invite(admin, CreateInvite(org, "student", klass, "7d", 1, False))
    school.app.join_by_invite(once_token, school.user())
    with pytest.raises(Gone) as exhausted:
        school.app.join_by_invite(once_token, school.user())
    assert exhausted.value.code == "invite.exhausted"
    revoked, revoked_token = school.app.create_invite(admin, CreateInvite(org, "student", klass, "7d", None, False))
    school.app.revoke_invite(admin, revoked.id)
    with pytest.raises(Gone) as gone:
        school.app.join_by_invite(revoked_token, school.user())
    assert gone.value.code == "invite.revoked"
    with pytest.raises(NotFound):
        school.app.join_by_invite("f" * 64, school.user())
    with pytest.raises(Invalid):
        school.app.create_invite(admin, CreateInvite(org, "student", klass, "2w", None, False))


def test_joining_by_link_places_the_person_in_the_organization_and_class_SC_6(school):
    org, admin = school.organization()
    klass = school.klass(org, admin, "7Б")
    invite, token = school.app.create_invite(admin, CreateInvite(org, "student", klass, "7d", None, False))
    preview = school.app.usable_invite(token)
    assert (preview.organization_id, preview.class_id, preview.role) == (org, klass, "student")
    student = school.user()
    membership = school.app.join_by_invite(token, student)
    assert (membership.roles, membership.class_id) == (["student"], klass)
    joined = published(school.app, "school.MemberJoined.v1")[-1].data
    assert (joined["user_id"], joined["role"], joined["class_id"], joined["via"]) == (student, "student", klass,
                                                                                      "invite")
    with pytest.raises(Conflict):
        school.app.join_by_invite(token, student)


def test_the_last_use_of_a_link_cannot_be_taken_twice_SC_5(durable_store_settings, monkeypatch):
    monkeypatch.setenv("SFERA_OPERATOR_PHONES", "+79990000001")
    setup = School(make_application(SchoolApplication, "school", create_table=True, config=durable_store_settings))
    org, admin = setup.organization()
    klass = setup.klass(org, admin)
    _, token = setup.app.create_invite(admin, CreateInvite(org, "student", klass, "7d", 1, False))
    people = [setup.user() for _ in range(4)]
    apps = [make_application(SchoolApplication, "school", config=durable_store_settings) for _ in people]
    barrier = threading.Barrier(len(people))
    outcomes: list[str] = []

    def take(app, person):
        barrier.wait()
        try:
            app.join_by_invite(token, person)
            outcomes.append("joined")
        except Gone as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=take, args=pair) for pair in zip(apps, people, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["invite.exhausted"] * 3 + ["joined"]
    assert setup.app.invite_from_token(token).uses == 1


def _take_rights(app, taking: str, org, actor, target, hold, outcomes: list[str]) -> None:
    """``actor`` demotes or removes the admin ``target``; ``hold`` runs around its first count of admins."""
    count, held = app._admin_count, []

    def held_count(organization_id):
        if held:
            return count(organization_id)
        held.append(True)
        return hold(lambda: count(organization_id))

    app._admin_count = held_count
    try:
        if taking == "demote":
            app.change_member(actor, ChangeMember(org, target, ["teacher"], None))
        else:
            app.remove_member(actor, org, target)
        outcomes.append("done")
    except (Conflict, Forbidden) as exc:
        outcomes.append(exc.code)


@pytest.mark.parametrize("order", ["counted-together", "one-saved-between"])
@pytest.mark.parametrize("taking", ["demote", "remove"])
def test_two_admins_taking_each_others_rights_at_once_leave_the_school_one_admin_SC_9(durable_store_settings,
                                                                                        monkeypatch, taking, order):
    """SC-9 keeps an organization at least one admin: the check counts admins, and two commands on two replicas
    (each admin demoting, or removing, the other) each counted two before either saved, touched no record in
    common, and both went through: a school with no admin. Both now write the organization's ``AdminChanges``,
    read before they count, so the later one's save conflicts, it runs again, and it is refused.
    ``counted-together``: both count, then both save. ``one-saved-between``: the second counts two, the first
    counts and saves, then the second goes on (it read ``AdminChanges`` after the first had saved it, and no
    conflict stopped it, when that record was read after the count)."""
    monkeypatch.setenv("SFERA_OPERATOR_PHONES", "+79990000001")
    setup = School(make_application(SchoolApplication, "school", create_table=True, config=durable_store_settings))
    org, first = setup.organization()
    second = setup.member(org, first, "teacher")
    setup.app.change_member(first, ChangeMember(org, second, ["admin", "teacher"], None))
    apps = [make_application(SchoolApplication, "school", config=durable_store_settings) for _ in range(2)]
    outcomes: list[str] = []
    if order == "counted-together":
        counted = threading.Barrier(2, timeout=10)

        def together(count):
            found = count()
            counted.wait()
            return found

        holds = (together, together)
    else:
        second_counted, first_done = threading.Event(), threading.Event()

        def first_hold(count):
            assert second_counted.wait(10)
            return count()

        def second_hold(count):
            found = count()
            second_counted.set()
            assert first_done.wait(10)
            return found

        holds = (first_hold, second_hold)

    def run(app, actor, target, hold):
        try:
            _take_rights(app, taking, org, actor, target, hold, outcomes)
        finally:
            if order != "counted-together" and hold is holds[0]:
                first_done.set()

    threads = [threading.Thread(target=run, args=(app, actor, target, hold))
               for app, actor, target, hold in zip(apps, (first, second), (second, first), holds, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(outcomes) == 2 and outcomes.count("done") == 1, outcomes
    admins = [u for u in (first, second) if (m := setup.app.membership(org, u)) is not None and m.has("admin")]
    assert len(admins) == 1


def test_email_registration_only_for_junior_classes_ID_4(school):
    org, admin = school.organization()
    junior, senior = school.klass(org, admin, "2В", 2025, 2034), school.klass(org, admin, "9А", 2018, 2027)
    invite, token = school.app.create_invite(admin, CreateInvite(org, "student", junior, "7d", None, True))
    assert invite.email_registration_allowed and school.app.usable_invite(token).class_id == junior
    with pytest.raises(Invalid) as info:
        school.app.create_invite(admin, CreateInvite(org, "student", senior, "7d", None, True))
    assert info.value.code == "invite.email_for_juniors_only"


def test_teachers_invite_students_but_not_teachers_RO_3(school):
    org, admin = school.organization()
    klass = school.klass(org, admin)
    teacher = school.member(org, admin, "teacher", klass)  # teaching the class (SC-7)
    student = school.member(org, admin, "student", klass)
    assert school.app.create_invite(teacher, CreateInvite(org, "student", klass, "1d", 30, False))[0].role == "student"
    with pytest.raises(Forbidden):
        school.app.create_invite(teacher, CreateInvite(org, "teacher", None, "1d", None, False))
    with pytest.raises(Forbidden):
        school.app.create_invite(student, CreateInvite(org, "student", klass, "1d", None, False))


# -- SC-2, SC-3 join requests -------------------------------------------------------------------------------


def test_join_requests_are_added_or_hidden_for_good_SC_3(school):
    org, admin = school.organization()
    klass = school.klass(org, admin)
    alice, bob = school.user(last_name="Алиева"), school.user(last_name="Борисов")
    school.app.request_to_join(alice, org, "Я учусь в 5А")
    school.app.request_to_join(bob, org, None)
    assert {r.user_id for r in school.app.join_requests(admin, org)} == {alice, bob}
    school.app.accept_join_request(admin, AcceptJoinRequest(org, alice, "student", klass))
    assert school.app.membership(org, alice).class_id == klass
    school.app.hide_join_request(admin, org, bob)
    assert school.app.join_requests(admin, org) == []
    with pytest.raises(Forbidden) as info:
        school.app.request_to_join(bob, org, "please")
    assert info.value.code == "join_request.hidden"
    _, token = school.app.create_invite(admin, CreateInvite(org, "student", klass, "7d", None, False))
    assert school.app.join_by_invite(token, bob).has("student")  # a new link still works (SC-3)


def test_only_admins_review_join_requests_SC_3(school):
    org, admin = school.organization()
    teacher = school.member(org, admin, "teacher")
    someone = school.user()
    school.app.request_to_join(someone, org, None)
    with pytest.raises(Forbidden):
        school.app.join_requests(teacher, org)
    with pytest.raises(Forbidden):
        school.app.accept_join_request(teacher, AcceptJoinRequest(org, someone, "student", None))


# -- RO, SC-7..SC-9 members -----------------------------------------------------------------------------------


def test_four_roles_and_one_account_with_several_RO_1_RO_6(school):
    org_a, admin_a = school.organization(name="A")
    org_b, admin_b = school.organization(name="B")
    klass_b = school.klass(org_b, admin_b)
    person = school.member(org_a, admin_a, "teacher")
    child = school.member(org_b, admin_b, "student", klass_b)
    handlers.on_parent_linked(school.app, make_event("identity.ParentLinked.v1", {
        "link_id": uuid.uuid4(), "parent_user_id": person, "child_user_id": child, "parent_number": 1,
        "consent_given_at": NOW, "linked_at": NOW}, event_id="identity:7:ParentLinked.v1"))
    assert school.app.membership(org_a, person).roles == ["teacher"]
    parent = school.app.membership(org_b, person)
    assert parent.roles == ["parent"] and parent.class_id == klass_b                     # RO-5 via the child
    assert {o.id for o, _ in school.app.my_organizations(person)} == {org_a, org_b}


def test_admins_appoint_admins_without_limit_RO_7(school):
    org, admin = school.organization()
    teachers = [school.member(org, admin, "teacher") for _ in range(3)]
    for t in teachers:
        school.app.appoint_admin(admin, org, t)
    assert all(school.app.membership(org, t).has("admin") for t in teachers)
    assert len(published(school.app, "school.AdminAppointed.v1")) == 4
    with pytest.raises(Conflict):
        school.app.appoint_admin(admin, org, teachers[0])
    outsider = school.user()
    with pytest.raises(NotFound):
        school.app.appoint_admin(admin, org, outsider)


def test_a_teacher_cannot_do_an_admins_work_RO_2_RO_3(school):
    org, admin = school.organization()
    klass = school.klass(org, admin)
    teacher = school.member(org, admin, "teacher")
    student = school.member(org, admin, "student", klass)
    for attempt in (lambda: school.app.create_class(teacher, CreateClass(org, "6А", 2024, 2030)),
                    lambda: school.app.appoint_admin(teacher, org, student),
                    lambda: school.app.change_member(teacher, ChangeMember(org, student, ["student"], klass)),
                    lambda: school.app.remove_member(teacher, org, student),
                    lambda: school.app.create_channel(teacher, org, "Новости")):
        with pytest.raises(Forbidden):
            attempt()


def test_teachers_add_themselves_to_classes_with_subjects_SC_7(school):
    org, admin = school.organization()
    klass = school.klass(org, admin, "8А")
    teacher = school.member(org, admin, "teacher")
    school.app.assign_self(teacher, org, klass, ["Физика", " Астрономия "])
    assert school.app.membership(org, teacher).subjects == {str(klass): ["Астрономия", "Физика"]}
    assigned = published(school.app, "school.TeacherAssigned.v1")[-1].data
    assert (assigned["user_id"], assigned["class_id"], assigned["subjects"]) == (teacher, klass,
                                                                                 ["Астрономия", "Физика"])
    student = school.member(org, admin, "student", klass)
    with pytest.raises(Forbidden):
        school.app.assign_self(student, org, klass, ["Физика"])
    with pytest.raises(Invalid):
        school.app.assign_self(teacher, org, klass, [" "])


def test_admins_correct_class_and_role_and_remove_members_SC_8_SC_9(school):
    org, admin = school.organization()
    five, six = school.klass(org, admin, "5А"), school.klass(org, admin, "6А", 2023, 2030)
    student = school.member(org, admin, "student", five)
    school.app.change_member(admin, ChangeMember(org, student, ["student"], six))
    assert school.app.membership(org, student).class_id == six
    changed = published(school.app, "school.MemberRoleChanged.v1")[-1].data
    assert (changed["class_id"], changed["roles"]) == (six, ["student"])
    members_six, _ = school.app.members(admin, org, six)
    assert [m["user_id"] for m in members_six] == [str(student)]
    assert school.app.members(admin, org, five)[0] == []
    school.app.remove_member(admin, org, student)
    assert school.app.membership(org, student) is None
    assert published(school.app, "school.MemberLeft.v1")[-1].data["user_id"] == student
    with pytest.raises(Conflict) as info:
        school.app.remove_member(admin, org, admin)
    assert info.value.code == "member.last_admin"


def test_members_list_by_role_staff_see_all_students_see_their_class(school):
    org, admin = school.organization()
    five, six = school.klass(org, admin, "5А"), school.klass(org, admin, "6А", 2023, 2030)
    teacher = school.member(org, admin, "teacher", last_name="Учителева")
    mine = school.member(org, admin, "student", five, last_name="Аксенов")
    classmate = school.member(org, admin, "student", five, last_name="Борисова")
    other = school.member(org, admin, "student", six, last_name="Вишнев")
    everyone, _ = school.app.members(admin, org)
    assert {m["user_id"] for m in everyone} == {str(x) for x in (admin, teacher, mine, classmate, other)}
    seen, _ = school.app.members(mine, org)
    assert {m["user_id"] for m in seen} == {str(x) for x in (admin, teacher, mine, classmate)}
    assert all("class_id" not in m for m in seen)
    with pytest.raises(Forbidden):
        school.app.members(mine, org, six)
    first, cursor = school.app.members(admin, org, limit=2)
    rest, end = school.app.members(admin, org, cursor=cursor, limit=10)
    assert len(first) == 2 and len(rest) == 3 and end is None


def test_nobody_reads_another_schools_members_or_materials(school):
    org_a, admin_a = school.organization(name="A")
    org_b, admin_b = school.organization(name="B")
    document = school.app.publish_document(admin_a, org_a, "Расписание", "r.pdf", "application/pdf", 10, "k")
    for attempt in (lambda: school.app.members(admin_b, org_a), lambda: school.app.documents(admin_b, org_a),
                    lambda: school.app.document(admin_b, document.id), lambda: school.app.classes(admin_b, org_a),
                    lambda: school.app.articles(admin_b, org_a), lambda: school.app.channels(admin_b, org_a)):
        with pytest.raises(Forbidden) as info:
            attempt()
        assert info.value.code == "organization.members_only"


# -- SC-10..SC-13 materials, dashboard ---------------------------------------------------------------------------


def test_documents_within_limits_students_read_but_do_not_publish_SC_10_RO_4(school, monkeypatch):
    org, admin = school.organization()
    klass = school.klass(org, admin)
    student = school.member(org, admin, "student", klass)
    monkeypatch.setenv("SFERA_DOCUMENT_MAX_BYTES", "1000")
    with pytest.raises(Invalid) as big:
        school.app.publish_document(admin, org, "Видео", "v.mp4", "video/mp4", 1001, "k")
    assert big.value.code == "document.too_large" and big.value.details["max_bytes"] == 1000
    with pytest.raises(Invalid) as kind:
        school.app.publish_document(admin, org, "Вирус", "x.exe", "application/x-msdownload", 10, "k")
    assert kind.value.code == "document.type_not_allowed"
    with pytest.raises(Forbidden):
        school.app.publish_document(student, org, "Моё", "m.pdf", "application/pdf", 10, "k")
    doc = school.app.publish_document(admin, org, "Расписание", "r.pdf", "application/pdf", 1000, "blob-1")
    assert [d.id for d in school.app.documents(student, org)] == [doc.id]
    assert school.app.document(student, doc.id).blob_key == "blob-1"
    assert published(school.app, "school.DocumentPublished.v1")[-1].data["document_id"] == doc.id


def test_articles_are_sanitised_drafts_then_published_SC_11(school):
    org, admin = school.organization()
    klass = school.klass(org, admin)
    teacher = school.member(org, admin, "teacher")
    student = school.member(org, admin, "student", klass)
    article = school.app.draft_article(teacher, DraftArticle(
        org, "Олимпиада", '<p onclick="x()">Итоги <b>олимпиады</b><script>alert(1)</script>'
                          '<img src="https://s/x.png" onerror="y()"></p>', None))
    assert "script" not in article.html and "onclick" not in article.html and "onerror" not in article.html
    assert "<b>олимпиады</b>" in article.html and 'src="https://s/x.png"' in article.html
    assert school.app.articles(student, org) == []
    with pytest.raises(NotFound):
        school.app.article(student, article.id)
    with pytest.raises(Forbidden):
        school.app.publish_article(student, article.id)
    school.app.publish_article(teacher, article.id)
    assert [a.id for a in school.app.articles(student, org)] == [article.id]
    assert published(school.app, "school.ArticlePublished.v1")[-1].data["title"] == "Олимпиада"


def test_an_articles_title_has_words_when_drafted_and_when_edited_SC_11(school):
    """An edit stored a blank title the draft refused (an outside review): one rule for both."""
    org, admin = school.organization()
    article = school.app.draft_article(admin, DraftArticle(org, "Экскурсия", "<p>x</p>", None))
    for title in ("   ", "\n\t", "x" * 201):
        for attempt in (lambda t: school.app.draft_article(admin, DraftArticle(org, t, "<p>x</p>", None)),
                        lambda t: school.app.edit_article(admin, EditArticle(article.id, t, "<p>y</p>", None))):
            with pytest.raises(Invalid) as refused:
                attempt(title)
            assert refused.value.code == "article.invalid_title"
    school.app.edit_article(admin, EditArticle(article.id, "  Экскурсия в музей ", "<p>y</p>", None))
    assert school.app.article(admin, article.id).title == "Экскурсия в музей"


def test_a_cover_is_an_image_the_articles_own_organization_was_issued_SC_11(school):
    """Issue #12: B's admin set a cover to a blob key of A's and read A's file through it."""
    org_a, admin_a = school.organization()
    org_b, admin_b = school.organization(name="Школа №2")
    klass = school.klass(org_a, admin_a)
    student = school.member(org_a, admin_a, "student", klass)
    image = school.app.upload_image(admin_a, org_a, "c.png", "image/png", 100, "ab" * 32)
    assert (image.organization_id, image.uploaded_by) == (org_a, admin_a)
    refusals = []
    for image_id in (image.id, uuid.uuid4()):              # A's image, and one that does not exist
        with pytest.raises(NotFound) as refused:
            school.app.draft_article(admin_b, DraftArticle(org_b, "Чужая обложка", "<p>x</p>", image_id))
        refusals.append(refused.value.to_dict())
    assert refusals[0] == refusals[1] and refusals[0]["code"] == "image.not_found"
    own = school.app.draft_article(admin_b, DraftArticle(org_b, "Своя", "<p>x</p>", None))
    with pytest.raises(NotFound, match="image.not_found"):
        school.app.edit_article(admin_b, EditArticle(own.id, "Своя", "<p>x</p>", image.id))
    with pytest.raises(NotFound, match="article.no_cover"):
        school.app.article_cover(admin_b, own.id)

    article = school.app.draft_article(admin_a, DraftArticle(org_a, "Экскурсия", "<p>x</p>", image.id))
    school.app.publish_article(admin_a, article.id)
    assert school.app.article_cover(student, article.id).blob_key == "ab" * 32
    with pytest.raises(Forbidden):
        school.app.article_cover(admin_b, article.id)


def test_images_are_images_by_their_content_from_teachers_and_admins_only(school):
    org, admin = school.organization()
    klass = school.klass(org, admin)
    student = school.member(org, admin, "student", klass)
    stranger = school.user()
    for actor in (student, stranger):
        with pytest.raises(Forbidden):
            school.app.upload_allowance(actor, org, "image")
        with pytest.raises(Forbidden):
            school.app.upload_image(actor, org, "c.png", "image/png", 100, "ab" * 32)
    with pytest.raises(Invalid, match="image.type_not_allowed"):
        school.app.upload_image(admin, org, "c.png", "text/html", 100, "ab" * 32)
    with pytest.raises(Invalid, match="image.too_large"):
        school.app.upload_image(admin, org, "c.png", "image/png", 5 * 1024 * 1024 + 1, "ab" * 32)
    assert school.app.upload_allowance(admin, org, "image")["max_bytes"] == 5 * 1024 * 1024


@pytest.mark.parametrize("name", ["run.exe ", "run.exe.", "run.ＥＸＥ", "ru\x00n.exe"])
def test_a_document_is_refused_by_its_cleaned_name_SC_10(school, name):
    org, admin = school.organization()
    with pytest.raises(Invalid, match="document.type_not_allowed"):
        school.app.publish_document(admin, org, "Программа", name, "application/pdf", 10, "ab" * 32)


def test_uploads_count_against_daily_quotas_per_person_and_per_school(school, monkeypatch):
    monkeypatch.setenv("SFERA_UPLOAD_DAILY_BYTES_PER_PERSON", "1000")
    monkeypatch.setenv("SFERA_UPLOAD_DAILY_BYTES_PER_SCHOOL", "1500")
    org, admin = school.organization()
    teacher = school.member(org, admin, "teacher")
    school.app.publish_document(admin, org, "Первый", "a.pdf", "application/pdf", 600, "ab" * 32)
    school.app.upload_image(admin, org, "c.png", "image/png", 300, "cd" * 32)
    assert school.app.upload_allowance(admin, org, "document") | {"max_bytes": 0} == {
        "max_bytes": 0, "bytes_left": 100, "scope": "person"}
    with pytest.raises(TooManyRequests) as person:
        school.app.publish_document(admin, org, "Второй", "b.pdf", "application/pdf", 101, "ab" * 32)
    assert (person.value.code, person.value.details) == ("upload.quota_exceeded", {"scope": "person",
                                                                                    "bytes_left": 100})
    school.app.publish_document(admin, org, "Второй", "b.pdf", "application/pdf", 100, "ab" * 32)
    with pytest.raises(TooManyRequests, match="upload.quota_exceeded"):
        school.app.upload_allowance(admin, org, "document")         # nothing left: refused before any byte
    assert school.app.upload_allowance(teacher, org, "image")["bytes_left"] == 500   # the school's 1500 - 1000
    with pytest.raises(TooManyRequests) as full:
        school.app.publish_document(teacher, org, "Третий", "c.pdf", "application/pdf", 501, "ab" * 32)
    assert full.value.details == {"scope": "organization", "bytes_left": 500}
    other, other_admin = school.organization(name="Другая школа")
    school.app.publish_document(other_admin, other, "Своё", "d.pdf", "application/pdf", 1000, "ab" * 32)


def test_channels_admins_post_members_read_SC_12(school):
    org, admin = school.organization()
    klass = school.klass(org, admin)
    student = school.member(org, admin, "student", klass)
    channel = school.app.create_channel(admin, org, "Новости школы")
    for n in range(3):
        school.app.post(admin, channel.id, f"Новость {n}")
    with pytest.raises(Forbidden):
        school.app.post(student, channel.id, "Привет")
    newest, cursor = school.app.posts(student, channel.id, None, 2)
    older, end = school.app.posts(student, channel.id, cursor, 2)
    assert [p["text"] for p in newest + older] == ["Новость 2", "Новость 1", "Новость 0"] and end is None
    assert len(published(school.app, "school.ChannelPostPublished.v1")) == 3


def test_one_channel_is_read_by_its_schools_members_only_SC_12(school):
    """GET /channels/{id}: the web client asked the whole list to find one; an id alone grants nothing."""
    org, admin = school.organization()
    student = school.member(org, admin, "student", school.klass(org, admin))
    other, other_admin = school.organization(name="Школа №2")
    channel = school.app.create_channel(admin, org, "Новости школы")
    assert (school.app.channel(student, channel.id).name, school.app.channel(admin, channel.id).id) == (
        "Новости школы", channel.id)
    with pytest.raises(Forbidden, match="organization.members_only"):
        school.app.channel(other_admin, channel.id)
    with pytest.raises(NotFound, match="channel.not_found"):
        school.app.channel(student, uuid.uuid4())


def test_the_teachers_dashboard_lists_the_classes_they_teach_SC_13(school):
    org, admin = school.organization(name="Лицей")
    eight, nine = school.klass(org, admin, "8А"), school.klass(org, admin, "9А", 2023, 2030)
    teacher = school.member(org, admin, "teacher")
    school.app.assign_self(teacher, org, eight, ["Физика"])
    school.app.assign_self(teacher, org, nine, ["Физика", "Астрономия"])
    board = school.app.dashboard(teacher)
    assert [(c["class_name"], c["subjects"]) for c in board["classes"]] == [("8А", ["Физика"]),
                                                                            ("9А", ["Астрономия", "Физика"])]
    assert set(board) == {"classes"}  # the lessons and chats are the bridge's and messaging's (the gateway's join)


def test_article_html_sanitiser_keeps_links_safe():
    cleaned = sanitize_html('<a href="javascript:alert(1)">x</a><a href="https://e.org">y</a>')
    assert "javascript" not in cleaned and 'href="https://e.org"' in cleaned and "noopener" in cleaned


def parent_event(kind: str, parent, child, n: int):
    data = {"link_id": uuid.uuid4(), "parent_user_id": parent, "child_user_id": child}
    if kind == "ParentLinked":
        data.update(parent_number=1, consent_given_at=NOW, linked_at=NOW)
    else:
        data.update(unlinked_by=parent, unlinked_at=NOW)
    return make_event(f"identity.{kind}.v1", data, event_id=f"identity:{n}:{kind}.v1")


def test_a_child_joining_later_brings_their_parents_and_unlinking_ends_the_parent_role_RO_5(school):
    org, admin = school.organization()
    klass = school.klass(org, admin)
    parent, child = school.user(), school.user()
    handlers.on_parent_linked(school.app, parent_event("ParentLinked", parent, child, 1))  # before the child joins
    assert school.app.membership(org, parent) is None
    _, token = school.app.create_invite(admin, CreateInvite(org, "student", klass, "7d", None, False))
    school.app.join_by_invite(token, child)
    assert school.app.membership(org, parent).roles == ["parent"]
    handlers.on_parent_unlinked(school.app, parent_event("ParentUnlinked", parent, child, 2))
    assert school.app.membership(org, parent) is None


def _parents_view(school, org, parent) -> set[str]:
    return {m["user_id"] for m in school.app.members(parent, org)[0]}


def _last_change(school, user) -> dict:
    return [e.data for e in published(school.app, "school.MemberRoleChanged.v1") if e.data["user_id"] == user][-1]


def _siblings(school, n: int) -> tuple:
    """A school with 5А and 6Б, a pupil in each, and one parent linked to both (identity's events n and n + 1)."""
    org, admin = school.organization()
    five, six = school.klass(org, admin, "5А"), school.klass(org, admin, "6Б", 2023, 2030)
    first, second = school.member(org, admin, "student", five), school.member(org, admin, "student", six)
    parent = school.user()
    handlers.on_parent_linked(school.app, parent_event("ParentLinked", parent, first, n))
    handlers.on_parent_linked(school.app, parent_event("ParentLinked", parent, second, n + 1))
    return org, admin, five, six, first, second, parent


def test_unlinking_one_of_two_children_takes_the_parent_out_of_that_childs_class_RO_5(school):
    """The parent's class follows their children there: unlinked from the child in 5А, they are the parent of the
    child in 6Б only, see 6Б and not 5А, and messaging (MemberRoleChanged) moves them to 6Б's chats."""
    org, admin, five, six, first, second, parent = _siblings(school, 31)
    classmate = school.member(org, admin, "student", five)
    assert school.app.membership(org, parent).class_id == five
    handlers.on_parent_unlinked(school.app, parent_event("ParentUnlinked", parent, first, 33))
    membership = school.app.membership(org, parent)
    assert (membership.roles, membership.class_id) == (["parent"], six)
    seen = _parents_view(school, org, parent)
    assert str(second) in seen and not {str(first), str(classmate)} & seen
    assert (_last_change(school, parent)["class_id"], _last_change(school, parent)["roles"]) == (six, ["parent"])
    assert str(parent) not in {m["user_id"] for m in school.app.members(admin, org, five)[0]}
    assert str(parent) in {m["user_id"] for m in school.app.members(admin, org, six)[0]}


def test_a_parent_of_children_in_two_classes_is_a_parent_in_both_RO_5_PL_7(school):
    """Siblings in two classes of one school: their parent is a parent in both, in the admin's lists, in their own
    view, in the events messaging's parents' chats follow and in the state messaging asks for (was: the first
    child's class only). Appointed an admin they stay in both; the siblings moved into one class, in that one."""
    org, admin, five, six, first, second, parent = _siblings(school, 51)
    classmate = school.member(org, admin, "student", six)
    membership = school.app.membership(org, parent)
    assert (membership.class_id, membership.parent_classes) == (five, [str(five), str(six)])
    for klass in (five, six):
        listed = {m["user_id"]: m for m in school.app.members(admin, org, klass)[0]}
        assert {str(c) for c in listed[str(parent)]["parent_classes"]} == {str(five), str(six)}
    assert {str(first), str(second), str(classmate)} <= _parents_view(school, org, parent)
    assert str(classmate) in {m["user_id"] for m in school.app.members(parent, org, six)[0]}  # not class_only
    assert [str(c) for c in _last_change(school, parent)["parent_classes"]] == [str(five), str(six)]
    assert school.app.membership_state(org, parent)["parent_classes"] == [str(five), str(six)]
    school.app.appoint_admin(admin, org, parent)
    assert school.app.membership(org, parent).parent_classes == [str(five), str(six)]
    joined = [e.data for e in published(school.app, "school.MemberJoined.v1") if e.data["user_id"] == parent][-1]
    assert (joined["role"], [str(c) for c in joined["parent_classes"]]) == ("admin", [str(five), str(six)])
    assert str(parent) in {m["user_id"] for m in school.app.members(admin, org, six)[0]}
    school.app.change_member(admin, ChangeMember(org, first, ["student"], six))
    assert school.app.membership(org, parent).parent_classes == [str(six)]
    assert str(parent) not in {m["user_id"] for m in school.app.members(admin, org, five)[0]}
    assert [str(c) for c in _last_change(school, parent)["parent_classes"]] == [str(six)]


def test_the_console_makes_memberships_the_older_code_left_what_the_rules_say_RO_5_PL_7_SC_9(school):
    """Before this release siblings in two classes gave their parent the first one only, and a teacher made a
    pupil stayed in the staff's roster (listed as staff to every pupil); ``python -m school.operator
    reconcile-members`` makes each membership what the rules say, once (a second run changes nothing). A parent an
    admin admitted, with no child linked, stays one. Nobody but the console may run it."""
    org, admin, five, six, first, second, parent = _siblings(school, 61)
    admitted, former = school.user(), school.member(org, admin, "teacher")
    school.app.request_to_join(admitted, org, None)
    school.app.accept_join_request(admin, AcceptJoinRequest(org, admitted, "parent", six))
    elsewhere, other_admin = school.organization()  # their linked child studies in another school
    child = school.member(elsewhere, other_admin, "student", school.klass(elsewhere, other_admin, "7В"))
    handlers.on_parent_linked(school.app, parent_event("ParentLinked", admitted, child, 63))
    legacy = school.app.membership(org, parent)  # as the older code left it: 5А only
    legacy.change(["parent"], five, parent, [str(five)])
    sixth = school.app.find(Roster, Roster.create_id(org, str(six)))
    sixth.remove(parent)
    school.app.change_member(admin, ChangeMember(org, former, ["student"], five))
    staff = school.app.find(Roster, Roster.create_id(org, "staff"))
    staff.add(former)  # as the older change_member left it
    school.app.save(legacy, sixth, staff)
    assert str(parent) not in {m["user_id"] for m in school.app.members(admin, org, six)[0]}
    assert str(former) in {m["user_id"] for m in school.app.members(first, org)[0]}  # listed as staff to a pupil
    everyone = school.app.members_to_reconcile(CONSOLE)
    assert {(org, parent), (org, admitted), (org, former)} <= set(everyone)
    with pytest.raises(Forbidden):
        school.app.reconcile_member(admin, org, parent)
    assert [school.app.reconcile_member(CONSOLE, o, u) for o, u in everyone].count(True) == 2
    assert school.app.membership(org, parent).parent_classes == [str(five), str(six)]
    assert str(parent) in {m["user_id"] for m in school.app.members(admin, org, six)[0]}
    assert str(former) not in school.app.find(Roster, Roster.create_id(org, "staff")).user_ids
    assert school.app.membership(org, admitted).parent_classes == [str(six)]
    assert not any(school.app.reconcile_member(CONSOLE, o, u) for o, u in everyone)


def test_a_parent_membership_from_before_parent_classes_were_kept_replays_as_it_was_RO_5(school):
    """Events stored before this release carry no parent_classes: a parent's one class was their class_id, a
    pupil's too when they were a parent as well (a review found the pupil's replayed as no parent class)."""
    org, admin = school.organization()
    five, six = school.klass(org, admin, "5А"), school.klass(org, admin, "6Б", 2023, 2030)
    pupil = school.member(org, admin, "student", five)
    stored = school.app.membership(org, pupil)
    stored._role_added(org, pupil, "parent", ["student", "parent"], six, {}, "parent_link")  # no parent_classes
    school.app.save(stored)
    replayed = school.app.find(Membership, Membership.create_id(org, pupil))
    assert (replayed.class_id, replayed.parent_classes) == (six, [str(six)])


def test_a_pupil_who_becomes_a_parent_keeps_their_own_class_RO_6_PL_7(school):
    """A pupil who follows their child's link is a parent in the child's class and still a pupil of their own
    (was: their class became the child's, and messaging made them a pupil there)."""
    org, admin = school.organization()
    five, six = school.klass(org, admin, "5А"), school.klass(org, admin, "6Б", 2023, 2030)
    young, child = school.member(org, admin, "student", five), school.member(org, admin, "student", six)
    handlers.on_parent_linked(school.app, parent_event("ParentLinked", young, child, 71))
    membership = school.app.membership(org, young)
    assert (membership.roles, membership.class_id, membership.parent_classes) == (
        ["student", "parent"], five, [str(six)])
    assert membership.groups == {str(five), str(six)}


def test_a_parent_back_in_the_school_is_a_parent_in_every_childs_class_PL_7(school):
    """A parent of siblings in 5А and 6Б, removed by an admin, comes back with a child re-admitted to 6Б: a parent
    in both classes again (was: the returning child's class only)."""
    org, admin, five, six, first, second, parent = _siblings(school, 81)
    school.app.remove_member(admin, org, parent)
    school.app.remove_member(admin, org, second)
    token = school.app.create_invite(admin, CreateInvite(org, "student", six, "7d", None, False))[1]
    school.app.join_by_invite(token, second)
    assert school.app.membership(org, parent).parent_classes == [str(five), str(six)]


def test_a_parents_classes_stay_their_childrens_whoever_changes_the_membership_PL_7_EJ_2_SC_8(school):
    """A second review: an admin moving a parent of 5А and 6Б to 7В made them a parent of 7В only until the next
    event about a child put it back (the admin's class now counts when it is one of the children's); a parent the
    journal made a pupil too was placed in their child's class (now unplaced, a parent of 6Б still); a pupil the
    journal made a parent with no class yet became, re-saved by an admin, a parent of their own class."""
    org, admin, five, six, first, second, parent = _siblings(school, 91)
    seven = school.klass(org, admin, "7В", 2022, 2029)
    school.app.change_member(admin, ChangeMember(org, parent, ["parent"], seven))
    moved = school.app.membership(org, parent)
    assert (moved.class_id, moved.parent_classes) == (five, [str(five), str(six)])
    school.app.change_member(admin, ChangeMember(org, parent, ["parent"], six))
    assert school.app.membership(org, parent).class_id == six
    assert not school.app.reconcile_member(CONSOLE, org, parent)

    journal = {"event_id": "bridge:1", "user_id": parent, "role": "student", "organization_ids": [org]}
    school.app.join_from_journal(**journal)
    pupil_too = school.app.membership(org, parent)
    assert (pupil_too.class_id, pupil_too.parent_classes, pupil_too.groups) == (
        None, [str(five), str(six)], {str(five), str(six), "unplaced"})

    pupil = school.member(org, admin, "student", five)
    school.app.join_from_journal(**{**journal, "event_id": "bridge:2", "user_id": pupil, "role": "parent"})
    school.app.change_member(admin, ChangeMember(org, pupil, ["student", "parent"], five))
    assert school.app.membership(org, pupil).parent_classes == []


def test_a_teacher_whose_child_studies_here_is_a_parent_too_when_back_by_a_teachers_invite_PL_8_RO_5(school):
    """A teacher who is also the parent of a pupil here, removed and back by a teacher's invite: a parent again,
    in their child's class, on the same account (was: a teacher only, until an event about the child)."""
    org, admin = school.organization()
    five = school.klass(org, admin, "5А")
    teacher, child = school.member(org, admin, "teacher"), school.member(org, admin, "student", five)
    handlers.on_parent_linked(school.app, parent_event("ParentLinked", teacher, child, 101))
    assert school.app.membership(org, teacher).roles == ["teacher", "parent"]
    school.app.remove_member(admin, org, teacher)
    token = school.app.create_invite(admin, CreateInvite(org, "teacher", None, "7d", None, False))[1]
    school.app.join_by_invite(token, teacher)
    back = school.app.membership(org, teacher)
    assert (back.roles, back.parent_classes) == (["teacher", "parent"], [str(five)])
    assert str(teacher) in {m["user_id"] for m in school.app.members(admin, org, five)[0]}


def test_a_members_rosters_follow_every_change_of_their_roles_and_classes_SC_8_SC_9(school):
    """The rosters the members list pages by (staff, each class, the unplaced) are the member's as they are now:
    a teacher made a pupil leaves the staff, a member removed leaves every roster (was: kept in the staff's)."""
    org, admin = school.organization()
    five = school.klass(org, admin, "5А")
    teacher = school.member(org, admin, "teacher")
    school.app.change_member(admin, ChangeMember(org, teacher, ["student"], five))
    staff = school.app.find(Roster, Roster.create_id(org, "staff"))
    assert str(teacher) not in staff.user_ids
    assert str(teacher) in school.app.find(Roster, Roster.create_id(org, str(five))).user_ids
    other = school.member(org, admin, "teacher")
    school.app.remove_member(admin, org, other)
    assert str(other) not in school.app.find(Roster, Roster.create_id(org, "staff")).user_ids


def test_a_child_moved_to_another_class_takes_their_parent_along_RO_5_SC_9(school):
    """A parent is in their child's class: when an admin moves or removes the child, or a child the e-journal
    brought in unplaced (EJ-2) is invited into a class, the parent follows; a parent with another child still in
    the old class stays there."""
    org, admin = school.organization()
    five, six = school.klass(org, admin, "5А"), school.klass(org, admin, "6Б", 2023, 2030)
    child, classmate = school.member(org, admin, "student", five), school.member(org, admin, "student", five)
    parent = school.user()
    handlers.on_parent_linked(school.app, parent_event("ParentLinked", parent, child, 41))
    school.app.change_member(admin, ChangeMember(org, child, ["student"], six))
    assert school.app.membership(org, parent).class_id == six
    assert str(classmate) not in _parents_view(school, org, parent)
    assert (_last_change(school, parent)["class_id"], _last_change(school, parent)["roles"]) == (six, ["parent"])
    assert str(parent) not in {m["user_id"] for m in school.app.members(admin, org, five)[0]}
    sibling = school.member(org, admin, "student", six)
    handlers.on_parent_linked(school.app, parent_event("ParentLinked", parent, sibling, 42))
    school.app.change_member(admin, ChangeMember(org, sibling, ["student"], five))
    assert school.app.membership(org, parent).class_id == six  # still the parent of a child in 6Б
    school.app.remove_member(admin, org, child)  # the child in 6Б leaves: the parent goes to the sibling's 5А
    assert school.app.membership(org, parent).class_id == five
    school.app.remove_member(admin, org, sibling)  # no child of theirs studies here any more
    assert school.app.membership(org, parent) is None

    journal_child, journal_parent = school.user(), school.user()
    handlers.on_journal_memberships(school.app, make_event("ejournal_bridge.JournalMembershipsChanged.v1", {
        "user_id": journal_child, "provider_id": uuid.uuid4(), "external_person_id": "p-1", "role": "student",
        "organization_ids": [org], "changed_at": NOW}, event_id="ej:43"))
    handlers.on_parent_linked(school.app, parent_event("ParentLinked", journal_parent, journal_child, 44))
    assert school.app.membership(org, journal_parent).class_id is None
    placed = school.member(org, admin, "student", six)  # a second child, in a class: the unplaced parent goes there
    handlers.on_parent_linked(school.app, parent_event("ParentLinked", journal_parent, placed, 45))
    assert school.app.membership(org, journal_parent).class_id == six
    handlers.on_parent_unlinked(school.app, parent_event("ParentUnlinked", journal_parent, placed, 46))
    assert school.app.membership(org, journal_parent).class_id is None  # back with the unplaced child
    _, token = school.app.create_invite(admin, CreateInvite(org, "student", five, "7d", None, False))
    school.app.join_by_invite(token, journal_child)
    assert school.app.membership(org, journal_parent).class_id == five
    assert str(classmate) in _parents_view(school, org, journal_parent)


def test_a_redelivered_event_changes_nothing_and_raises_nothing_RO_5(school):
    """A redelivered ParentUnlinked finds its link gone: it is a duplicate (False), not a NotYet to retry until it
    is dead-lettered; a redelivered ParentLinked does not bring the parent back."""
    org, admin = school.organization()
    klass = school.klass(org, admin)
    child, parent = school.member(org, admin, "student", klass), school.user()
    linked = parent_event("ParentLinked", parent, child, 21)
    unlinked = parent_event("ParentUnlinked", parent, child, 22)
    assert handlers.on_parent_linked(school.app, linked) is True
    assert handlers.on_parent_unlinked(school.app, unlinked) is True
    head = school.app.process_recorder.max_notification_id()
    assert handlers.on_parent_unlinked(school.app, unlinked) is False
    assert handlers.on_parent_linked(school.app, linked) is False
    assert school.app.membership(org, parent) is None
    assert school.app.process_recorder.max_notification_id() == head


def test_an_older_profile_edit_never_replaces_a_newer_name_SC_8(school):
    """An outside review: two edits of a name, the older one applied last (a retry after a save conflict goes to
    the delay queue), left the admin's member list with the old name. Each says its account's version."""
    user = school.user(last_name="Старая", first_name="Анна")

    def edited(last_name: str, sequence: int) -> None:
        handlers.on_profile_updated(school.app, make_event("identity.ProfileUpdated.v1", {
            "user_id": user, "last_name": last_name, "first_name": "Анна", "updated_by": user, "updated_at": NOW},
            event_id=f"identity:{sequence}:ProfileUpdated.v1", sequence=sequence))

    edited("Новая", 5)
    edited("Средняя", 4)
    assert school.app.get_person(user).last_name == "Новая"
    edited("Ещё новее", 6)
    assert school.app.get_person(user).last_name == "Ещё новее"


def test_an_unlink_without_a_sequence_before_its_link_is_retried(school):
    """An event from before events carried a sequence cannot be ordered: it waits for its link (NotYet). A
    ProfileUpdated before its UserRegistered no longer waits: it makes the person (test_people_order)."""
    from shared.errors import NotYet

    with pytest.raises(NotYet):
        handlers.on_parent_unlinked(school.app, parent_event("ParentUnlinked", uuid.uuid4(), uuid.uuid4(), 3))


def test_a_phone_named_by_two_approved_applications_admins_both_SC_1(school):
    phone = "+79006667788"
    orgs = []
    for name in ("Школа А", "Школа Б"):
        application = school.app.submit_application(None, SubmitApplication(name, "school", "RU", "Псков", phone,
                                                                             None))
        orgs.append(school.app.approve_application(CONSOLE, application.id).id)
    admin = school.user(phone)
    assert all(school.app.membership(o, admin).has("admin") for o in orgs)


def test_a_parent_of_two_students_in_two_schools_joins_both_RO_5(school):
    parent = school.user()
    kids = []
    for name in ("A", "B"):
        org, admin = school.organization(name=name)
        kids.append((org, school.member(org, admin, "student", school.klass(org, admin))))
    for n, (_, kid) in enumerate(kids):
        handlers.on_parent_linked(school.app, parent_event("ParentLinked", parent, kid, 10 + n))
    assert all(school.app.membership(org, parent).has("parent") for org, _ in kids)


def test_a_whole_class_opening_one_link_at_once_all_join_SC_6(durable_store_settings, monkeypatch):
    monkeypatch.setenv("SFERA_OPERATOR_PHONES", "+79990000001")
    school = School(make_application(SchoolApplication, "school", create_table=True, config=durable_store_settings))
    org, admin = school.organization()
    klass = school.klass(org, admin)
    _, token = school.app.create_invite(admin, CreateInvite(org, "student", klass, "7d", 30, False))
    pupils = [school.user() for _ in range(25)]
    errors: list[Exception] = []

    def join(pupil):
        try:
            school.app.join_by_invite(token, pupil)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=join, args=(p,)) for p in pupils]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(school.app.members(admin, org, klass)[0]) == 25
    assert school.app.invite_from_token(token).uses == 25


# -- no lost write: two replicas race at every kind of command site (issue #12) -----------------------------


@pytest.fixture
def replicas(durable_store_settings, monkeypatch):
    """An approved school with a class and a channel, and two more application
    instances on the same store (two replicas of the service)."""
    monkeypatch.setenv("SFERA_OPERATOR_PHONES", "+79990000001")
    setup = School(make_application(SchoolApplication, "school", create_table=True, config=durable_store_settings))
    org, admin = setup.organization()
    world = {"setup": setup, "org": org, "admin": admin, "class": setup.klass(org, admin),
             "channel": setup.app.create_channel(admin, org, "Новости").id,
             "people": [setup.user() for _ in range(2)]}
    world["apps"] = [make_application(SchoolApplication, "school", config=durable_store_settings) for _ in range(2)]
    return world


def _race(world, command):
    """Each replica runs ``command(app, n)``; both have read before either writes."""
    a, b = world["apps"]
    with racing(a, b):
        results = run_together(lambda: command(a, 0), lambda: command(b, 1))
    for result in results:
        if isinstance(result, Exception):
            raise result
    return results


def test_racing_applications_are_both_stored_and_queued(replicas):
    from school.domain import ApplicationQueue, OrganizationApplication

    made = _race(replicas, lambda app, n: app.submit_application(
        None, SubmitApplication(f"Лицей №{n}", "school", "RU", "Казань", f"+7900888000{n}", None)).id)
    queue = replicas["setup"].app.find(ApplicationQueue, ApplicationQueue.create_id())
    for application_id in made:
        assert replicas["setup"].app.find(OrganizationApplication, application_id) is not None
        assert str(application_id) in queue.pending


def test_racing_invites_are_both_stored_and_listed_SC_5(replicas):
    w = replicas
    made = _race(w, lambda app, n: app.create_invite(w["admin"], CreateInvite(w["org"], "student", w["class"], "7d",
                                                                              None, False))[0].id)
    listed = {i.id for i, _ in w["setup"].app.invites(w["admin"], w["org"])}
    assert set(made) <= listed


def test_racing_join_requests_are_both_queued_SC_2(replicas):
    w = replicas
    _race(w, lambda app, n: app.request_to_join(w["people"][n], w["org"], None))
    assert {r.user_id for r in w["setup"].app.join_requests(w["admin"], w["org"])} == set(w["people"])


def test_racing_documents_and_articles_are_both_listed_SC_10_SC_11(replicas):
    w = replicas
    docs = _race(w, lambda app, n: app.publish_document(w["admin"], w["org"], f"Документ {n}", "r.pdf",
                                                         "application/pdf", 10, f"blob-{n}").id)
    assert {d.id for d in w["setup"].app.documents(w["admin"], w["org"])} == set(docs)
    articles = _race(w, lambda app, n: app.draft_article(w["admin"], DraftArticle(w["org"], f"Статья {n}", "<p>x</p>",
                                                                                  None)).id)
    assert {a.id for a in w["setup"].app.articles(w["admin"], w["org"])} == set(articles)


def test_racing_channels_and_posts_are_all_kept_SC_12(replicas):
    w = replicas
    channels = _race(w, lambda app, n: app.create_channel(w["admin"], w["org"], f"Канал {n}").id)
    assert set(channels) <= {c.id for c in w["setup"].app.channels(w["admin"], w["org"])}
    _race(w, lambda app, n: app.post(w["admin"], w["channel"], f"Объявление {n}"))
    posts, _ = w["setup"].app.posts(w["admin"], w["channel"], None, 50)
    assert sorted(p["text"] for p in posts) == ["Объявление 0", "Объявление 1"]


def test_racing_member_changes_both_hold_RO_7(replicas):
    w = replicas
    teachers = [w["setup"].member(w["org"], w["admin"], "teacher") for _ in range(2)]
    _race(w, lambda app, n: app.appoint_admin(w["admin"], w["org"], teachers[n]))
    for teacher in teachers:
        assert w["setup"].app.membership(w["org"], teacher).has("admin")
