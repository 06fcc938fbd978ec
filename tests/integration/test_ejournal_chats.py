"""The bridge's application with a real messaging application on every store: signed webhooks into the inbox,
the mirror of roster and timetable, lessons to events, account links, and the chats the process manager defines
in messaging (EJ-1..EJ-5, CH-2). Two services' applications at once, so it lives with the cross-service tests
(a service's own tests import only that service and shared). The e-journal's HTTP side is a fake; e2e uses the
simulator."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from ejournal_bridge.application import BridgeApplication, resyncs
from ejournal_bridge.domain import JournalClass, LinkAttempt, class_id_of
from ejournal_bridge.outbox import to_integration_events
from messaging.application import MessagingApplication
from shared.contracts import make_event
from shared.contracts.api.ejournal_bridge import RegisterProvider
from shared.contracts.api.messaging import SystemChatSpec
from shared.errors import Forbidden, Invalid, NotFound, Unauthorized
from shared.links import link_token
from shared.store import make_application
from tools.ejournal_sim.fixture import FixtureJournal, build_school
from tools.ejournal_sim.webhooks import WebhookSender, sign

pytestmark = pytest.mark.integration



class World:
    """A journal school, the bridge, and messaging receiving the bridge's command."""

    def __init__(self, config, school=None, messaging=None):
        self.school = school or build_school("16", classes=3, students=30, teachers=12)
        self.messaging = messaging or make_application(MessagingApplication, "messaging", create_table=True,
                                                       config=config)
        self.bridge = make_application(BridgeApplication, "ejournal_bridge", create_table=True, config=config,
                                       journal=FixtureJournal(self.school), chats=self.define_system_chats)
        self.provider, self.secret = self.bridge.register_provider(RegisterProvider(
            "16", f"ЭШ-{uuid.uuid4().hex[:6]}", "http://journal.test", "client", "secret"))
        self.sender = WebhookSender("unused", self.secret)
        self.users: dict[str, uuid.UUID] = {}
        self.n = 0

    def define_system_chats(self, specs: list[dict]) -> list[dict]:
        """The bridge's command as messaging's entrypoint takes it: the specs become typed commands."""
        return self.messaging.define_system_chats(SystemChatSpec(many=True).load_command(specs))

    def deliver(self, type_: str, records: list[dict], event_id: str | None = None, now=None):
        body = self.sender.body(type_, records, event_id)
        ts = str(int((now or datetime.now(timezone.utc)).timestamp()))
        delivery, duplicate = self.bridge.receive_webhook(self.provider.id, ts, sign(self.secret, ts, body), body)
        if not duplicate:
            self.process(delivery)
        return delivery, duplicate

    def process(self, delivery):
        self.n += 1
        return self.bridge.process_delivery(delivery.id, f"test:{delivery.id}")

    def push_school(self):
        for name, records in (("orgs", [self.school.org]), ("classes", self.school.classes),
                              ("users", self.school.users), ("enrollments", self.school.enrollments),
                              ("lessons", self.school.lessons)):
            for start in range(0, len(records), 40):
                self.deliver(f"{name}.upserted", records[start:start + 40])

    def link(self, sourced_id: str) -> uuid.UUID:
        """A platform account signs in to the journal as this person (EJ-1)."""
        user = self.users.setdefault(sourced_id, uuid.uuid4())
        self.bridge.start_link(user, self.provider.id, "http://platform/cb")
        attempt = self._last_attempt(user)
        link = self.bridge.finish_link(user, link_token("ejournal-link", attempt), sourced_id, "http://platform/cb")
        self.bridge.refresh_person(self.provider.id, link.external_person_id)
        return user

    def _last_attempt(self, user):
        for n in reversed(self.bridge.process_recorder.select_notifications(start=1, limit=10**6)):
            if n.topic.endswith("LinkAttempt.Started"):
                found = self.bridge.find(LinkAttempt, n.originator_id)
                if found.user_id == user:
                    return found.id
        raise AssertionError("no link attempt")

    def chats_of(self, user: uuid.UUID, kind: str | None = None) -> list:
        return [c["chat"] for c in self.messaging.chats_of(user) if kind is None or c["chat"].kind == kind]

    def published(self, event_type: str) -> list[dict]:
        found = []
        for n in self.bridge.process_recorder.select_notifications(start=1, limit=10**6):
            for t, data, _ in to_integration_events(self.bridge.mapper.to_domain_event(n)):
                if t == event_type:
                    found.append(make_event(t, data, event_id=f"b:{n.id}").data)
        return found


@pytest.fixture
def world(store_settings) -> World:
    return World(store_settings)


def first_class(world):
    klass = world.school.classes[0]["sourcedId"]
    return klass, world.school.class_teacher(klass), world.school.students_of(klass)


# -- webhooks: signature, replay window, idempotency, schema -----------------------------------------------


def test_signed_deliveries_are_stored_once_and_bad_ones_store_nothing(world):
    body = world.sender.body("orgs.upserted", [world.school.org], "evt-1")
    now = datetime.now(timezone.utc)
    ts = str(int(now.timestamp()))
    before = world.bridge.process_recorder.max_notification_id()
    refusals = [
        (ts, "v1=" + "0" * 64, body, Unauthorized, "webhook.bad_signature"),
        (ts, "v1=é", body, Unauthorized, "webhook.bad_signature"),  # was a TypeError: a 5xx to anyone
        (ts, "v1=" + "\u0436" * 64, body, Unauthorized, "webhook.bad_signature"),
        (ts, sign("not-the-secret", ts, body), body, Unauthorized, "webhook.bad_signature"),
        (ts, sign(world.secret, ts, body + b" "), body, Unauthorized, "webhook.bad_signature"),  # body changed
        (str(int(now.timestamp()) - 301), sign(world.secret, str(int(now.timestamp()) - 301), body), body,
         Unauthorized, "webhook.stale"),
        (str(int(now.timestamp()) + 301), sign(world.secret, str(int(now.timestamp()) + 301), body), body,
         Unauthorized, "webhook.stale"),
        ("yesterday", sign(world.secret, "yesterday", body), body, Unauthorized, "webhook.bad_timestamp"),
        ("1" + "0" * 18, sign(world.secret, "1" + "0" * 18, body), body, Unauthorized,  # was an OSError: a 5xx
         "webhook.bad_timestamp"),
        (ts, sign(world.secret, ts, b"{not json"), b"{not json", Invalid, "webhook.malformed"),
    ]
    for timestamp, signature, raw, error, code in refusals:
        with pytest.raises(error) as info:
            world.bridge.receive_webhook(world.provider.id, timestamp, signature, raw, now)
        assert info.value.code == code
    for bad in ({"event_id": "e", "type": "users.upserted", "occurred_at": now.isoformat(), "records": [{"x": 1}]},
                {"event_id": "e", "type": "teleport.started", "occurred_at": now.isoformat(), "records": [{}]},
                {"event_id": "e", "type": "lessons.upserted", "occurred_at": now.isoformat(), "records": [
                    {**world.school.lessons[0], "endsAt": world.school.lessons[0]["startsAt"]}]},
                {"event_id": "e", "type": "lessons.upserted", "occurred_at": now.isoformat(), "records": [
                    {**world.school.lessons[0], "startsAt": 5}]},
                {"event_id": "e", "type": "academicSessions.upserted", "occurred_at": now.isoformat(), "records": [
                    {"sourcedId": "y1", "title": "2026", "startDate": "soon", "endDate": "2027-06-30"}]}):
        raw = json.dumps(bad).encode()
        with pytest.raises(Invalid) as info:
            world.bridge.receive_webhook(world.provider.id, ts, sign(world.secret, ts, raw), raw, now)
        assert info.value.code == "webhook.malformed"
    with pytest.raises(NotFound):
        world.bridge.receive_webhook(uuid.uuid4(), ts, sign(world.secret, ts, body), body, now)
    assert world.bridge.process_recorder.max_notification_id() == before  # nothing stored

    # a lesson action's times are no part of its schema: they are not read (they were, as a lesson's: a KeyError
    # for a missing endsAt, an AttributeError for a number, each a 5xx to the journal that signed it)
    for extra in ({"startsAt": "2026-09-01T10:00:00Z"}, {"startsAt": 5, "endsAt": None}):
        raw = json.dumps({"event_id": f"act-{len(extra)}", "type": "lesson.published", "occurred_at": now.isoformat(),
                          "records": [{"sourcedId": world.school.lessons[0]["sourcedId"], **extra}]}).encode()
        delivery, duplicate = world.bridge.receive_webhook(world.provider.id, ts, sign(world.secret, ts, raw), raw, now)
        assert not duplicate and delivery.type == "lesson.published"
    before = world.bridge.process_recorder.max_notification_id()

    first, duplicate = world.bridge.receive_webhook(world.provider.id, ts, sign(world.secret, ts, body), body, now)
    assert not duplicate
    again, duplicate = world.bridge.receive_webhook(world.provider.id, ts, sign(world.secret, ts, body), body, now)
    assert duplicate and again.id == first.id
    assert [e["event_id"] for e in world.published("ejournal_bridge.WebhookAccepted.v1")].count("evt-1") == 1


def test_a_rotated_secret_keeps_working_for_its_grace_period(world):
    old = world.secret
    new = world.bridge.rotate_secret(world.provider.id, timedelta(hours=1))
    body = world.sender.body("orgs.upserted", [world.school.org])
    now = datetime.now(timezone.utc)
    ts = str(int(now.timestamp()))
    for secret in (old, new):
        world.bridge.receive_webhook(world.provider.id, ts, sign(secret, ts, body), body, now)
    later = now + timedelta(hours=2)
    ts_later = str(int(later.timestamp()))
    with pytest.raises(Unauthorized):
        world.bridge.receive_webhook(world.provider.id, ts_later, sign(old, ts_later, body), body, later)
    world.bridge.receive_webhook(world.provider.id, ts_later, sign(new, ts_later, body), body, later)


# -- linking and the chats that create themselves --------------------------------------------------------------


def test_linking_gives_the_class_teacher_three_chats_at_once_EJ_1_EJ_2_EJ_3(world):
    world.push_school()
    klass, teacher, students = first_class(world)
    teacher_user = world.link(teacher)
    (link,) = world.bridge.links_of(teacher_user)
    assert (link.external_person_id, link.role) == (teacher, "teacher")
    assert world.published("ejournal_bridge.EjournalAccountLinked.v1")[-1]["role"] == "teacher"  # confirms profile
    three = {c.kind: c for c in world.chats_of(teacher_user) if c.kind.startswith("class_")}
    assert set(three) == {"class_students", "class_parents", "class_colleagues"}
    assert all(c.members == [str(teacher_user)] for c in three.values())  # nobody else linked yet
    # Students and parents land in them by linking; nobody invites them (EJ-4, CH-2).
    pupil = world.link(students[0])
    parent = world.link(world.school.user(students[0])["agents"][0])
    assert str(pupil) in world.messaging.chat(three["class_students"].id).members
    assert str(parent) in world.messaging.chat(three["class_parents"].id).members
    assert str(parent) not in world.messaging.chat(three["class_students"].id).members
    mirror = world.bridge.find(JournalClass, class_id_of(world.provider.id, klass))
    colleague = next(t for t in mirror.all_teachers() if t != teacher)
    colleague_user = world.link(colleague)
    assert str(colleague_user) in world.messaging.chat(three["class_colleagues"].id).members
    assert all(c.system for c in world.chats_of(pupil))


def test_a_stale_member_list_never_overwrites_a_newer_one_a_parent_unlinked_stays_out_CH_2_EJ_3(world):
    """An outside review: syncs of one class run at once (a delivery, a link, an unlink), each reading the people
    and then sending its lists; a delivery's list read while a parent was still linked reached messaging after the
    unlink's list without them, and put them back in the class's parents' chat. Each list says the bridge's log
    position it was read at (``as_of``): messaging keeps the newest one it applied and sets an older one aside,
    and the bridge does not record a list set aside as sent (a review of that change: the parent's relink, whose
    list equals it, was then never sent)."""
    world.push_school()
    klass, teacher, students = first_class(world)
    world.link(teacher)
    parent_id = world.school.user(students[0])["agents"][0]
    parent = world.link(parent_id)
    parents_chat = next(c for c in world.chats_of(parent) if c.kind == "class_parents")
    assert str(parent) in world.messaging.chat(parents_chat.id).members
    held: list[dict] = []

    def slow_sink(specs: list[dict]) -> list[dict]:
        """A sync read with the parent linked, whose lists reach messaging after the unlink's."""
        held.extend(specs)
        world.bridge.unlink(parent, world.provider.id)
        world.bridge.refresh_person(world.provider.id, parent_id)
        assert str(parent) not in world.messaging.chat(parents_chat.id).members
        return world.define_system_chats(specs)

    world.bridge.sync_chats(world.provider.id, {klass}, chats=slow_sink, force=True)
    assert str(parent) not in world.messaging.chat(parents_chat.id).members  # the late lists: set aside
    assert held and all(spec["as_of"] > 0 for spec in held)
    world.link(parent_id)  # linked again: their list is the one set aside, and it is sent
    assert str(parent) in world.messaging.chat(parents_chat.id).members
    assert world.messaging.chat(parents_chat.id).members[0] == str(world.users[teacher])


def test_each_class_subject_and_teacher_gets_a_subject_chat_of_linked_students_EJ_4_CH_2(world):
    world.push_school()
    klass, _, students = first_class(world)
    lessons = [lesson for lesson in world.school.lessons if lesson["class"] == klass]
    pairs = sorted({(lesson["subject"], lesson["teacher"]) for lesson in lessons})
    linked_students = [world.link(s) for s in students[:3]]
    subject, teacher = pairs[0]
    teacher_user = world.link(teacher)
    subject_chats = [c for c in world.chats_of(teacher_user, "subject") if c.class_id is not None]
    mine = [c for c in subject_chats if c.subject == subject and c.name.startswith(
        world.school.classes[0]["title"])]
    assert len(mine) == 1
    assert sorted(mine[0].members) == sorted([str(teacher_user), *map(str, linked_students)])
    # The timetable moves every lesson of that subject to another teacher: their chat, and the old one emptied.
    other = next(t for t in world.school.of_role("teacher") if t["sourcedId"] != teacher)["sourcedId"]
    other_user = world.link(other)
    moved = [{**lesson, "teacher": other} for lesson in lessons if lesson["subject"] == subject]
    world.deliver("lessons.upserted", moved)
    new_chat = [c for c in world.chats_of(other_user, "subject") if c.subject == subject and c.class_id ==
                mine[0].class_id]
    assert len(new_chat) == 1 and str(linked_students[0]) in new_chat[0].members
    if not any(t == teacher for s, t in pairs if s != subject):
        assert world.messaging.chat(mine[0].id).members == []
    # A student leaving the class leaves its chats.
    (enrollment,) = [e for e in world.school.enrollments if e["user"] == students[0] and e["class"] == klass]
    world.deliver("enrollments.deleted", [{"sourcedId": enrollment["sourcedId"]}])
    assert str(linked_students[0]) not in world.messaging.chat(new_chat[0].id).members


def test_replaying_the_whole_inbox_produces_the_same_chats_not_copies_CH_2(world):
    world.push_school()
    klass, teacher, students = first_class(world)
    for person in [teacher, *students[:5]]:
        world.link(person)
    chats_before = {c.key: sorted(c.members) for u in world.users.values() for c in world.chats_of(u)}
    assert len(chats_before) >= 4
    messaging_head = world.messaging.process_recorder.max_notification_id()
    bridge_head = world.bridge.process_recorder.max_notification_id()
    replay_id = world.bridge.request_replay(world.provider.id)
    replayed = world.bridge.replay_inbox(world.provider.id, replay_id=replay_id)
    assert world.bridge.provider(world.provider.id).last_replay["state"] == "finished"
    assert replayed["deliveries"] == world.n and replayed["chats_sent"] >= len(chats_before)
    # Every chat was defined again; messaging recorded nothing new but the newer log position of each list it
    # applied (ChatKey.as_of), the mirror nothing but its bookkeeping.
    new_messaging_events = world.messaging.process_recorder.select_notifications(start=messaging_head + 1,
                                                                                 limit=10**6)
    assert {n.topic.rsplit(":", 1)[1] for n in new_messaging_events} <= {"ChatKey.ListApplied"}
    assert {c.key: sorted(c.members) for u in world.users.values() for c in world.chats_of(u)} == chats_before
    new_bridge_events = world.bridge.process_recorder.select_notifications(start=bridge_head + 1, limit=10**6)
    assert {n.topic.rsplit(".", 1)[1] for n in new_bridge_events} <= {"ChatsSent", "ReplayRequested", "ReplayFinished"}


# -- the timetable as events (EJ-4, EJ-5, CA-7) ----------------------------------------------------------------


def test_timetable_changes_become_lesson_events_EJ_4_EJ_5(world):
    world.deliver("classes.upserted", world.school.classes[:1])
    klass = world.school.classes[0]["sourcedId"]
    lesson = next(lesson for lesson in world.school.lessons if lesson["class"] == klass)
    remote = {**lesson, "remote": True}
    world.deliver("lessons.upserted", [remote])
    world.deliver("lessons.upserted", [remote])  # the same slot again: nothing new
    (scheduled,) = world.published("ejournal_bridge.LessonScheduled.v1")
    assert (scheduled["subject"], scheduled["remote"], scheduled["external_lesson_id"]) == (
        lesson["subject"], True, lesson["sourcedId"])
    later = datetime.fromisoformat(lesson["startsAt"]) + timedelta(hours=1)
    world.deliver("lessons.upserted", [{**remote, "startsAt": later.isoformat(),
                                        "endsAt": (later + timedelta(minutes=45)).isoformat()}])
    (moved,) = world.published("ejournal_bridge.LessonRescheduled.v1")
    assert moved["starts_at"] == later
    world.deliver("lesson.published", [{"sourcedId": lesson["sourcedId"]}])
    world.deliver("lesson.started", [{"sourcedId": lesson["sourcedId"], "by": lesson["teacher"]}])
    world.deliver("lesson.ended", [{"sourcedId": lesson["sourcedId"], "by": lesson["teacher"]}])
    assert len(world.published("ejournal_bridge.LessonPublished.v1")) == 1
    (start,) = world.published("ejournal_bridge.LessonStartRequested.v1")
    assert start["requested_by_external_id"] == lesson["teacher"] and start["class_id"] == scheduled["class_id"]
    assert len(world.published("ejournal_bridge.LessonEndRequested.v1")) == 1
    # A lesson in class cannot be published as remote; the rest of the delivery still applies.
    other = next(x for x in world.school.lessons if x["class"] == klass and x["sourcedId"] != lesson["sourcedId"])
    world.deliver("lessons.upserted", [{**other, "remote": False}])
    world.deliver("lesson.published", [{"sourcedId": other["sourcedId"]}, {"sourcedId": "no-such-lesson"}])
    assert len(world.published("ejournal_bridge.LessonPublished.v1")) == 1
    world.deliver("lessons.deleted", [{"sourcedId": lesson["sourcedId"]}])
    (cancelled,) = world.published("ejournal_bridge.LessonCancelled.v1")
    assert cancelled["lesson_id"] == scheduled["lesson_id"]


def test_a_lessons_page_in_the_journal_opens_its_subject_chat_EJ_7(world):
    world.push_school()
    klass, _, students = first_class(world)
    lesson = next(x for x in world.school.lessons if x["class"] == klass)
    key = world.bridge.lesson_chat_key(world.provider.id, lesson["sourcedId"])
    pupil = world.link(students[0])
    # EJ-4: the subject chat comes from the timetable; the pupils who linked are in it before the teacher links.
    assert world.messaging.chat_by_key(pupil, key).members == [str(pupil)]
    teacher = world.link(lesson["teacher"])
    chat = world.messaging.chat_by_key(pupil, key)
    assert (chat.kind, chat.subject) == ("subject", lesson["subject"])
    assert sorted(chat.members) == sorted([str(teacher), str(pupil)])  # the teacher enters when they link
    with pytest.raises(Forbidden):
        world.messaging.chat_by_key(uuid.uuid4(), key)  # members only
    with pytest.raises(NotFound):
        world.bridge.lesson_chat_key(world.provider.id, "no-such-lesson")


def test_people_find_their_lessons_pupils_parents_and_teachers_EJ_5_SC_13(world):
    world.push_school()
    klass, _, students = first_class(world)
    monday = datetime(2026, 9, 7, tzinfo=timezone(timedelta(hours=3)))
    class_lessons = {x["sourcedId"] for x in world.school.lessons if x["class"] == klass}
    pupil = world.link(students[0])
    parent = world.link(world.school.user(students[0])["agents"][0])
    week = {row["external_lesson_id"] for row in world.bridge.lessons_of(pupil, monday, monday + timedelta(days=7))}
    assert week == class_lessons
    monday_only = world.bridge.lessons_of(parent, monday, monday + timedelta(days=1))  # the child's lessons
    assert len(monday_only) == 6 and {r["external_lesson_id"] for r in monday_only} <= class_lessons
    assert [r["starts_at"] for r in monday_only] == sorted(r["starts_at"] for r in monday_only)
    row = monday_only[0]
    assert row["lesson_id"] == world.bridge.lesson(row["lesson_id"]).id and row["teaching"] is False
    teacher_sourced = world.school.lessons[0]["teacher"]
    teacher = world.link(teacher_sourced)
    taught = world.bridge.lessons_of(teacher, monday, monday + timedelta(days=7))
    assert {r["external_lesson_id"] for r in taught} == {
        x["sourcedId"] for x in world.school.lessons if x["teacher"] == teacher_sourced}
    assert all(r["teaching"] for r in taught)
    assert world.bridge.lessons_of(uuid.uuid4(), monday, monday + timedelta(days=7)) == []  # not linked
    with pytest.raises(Invalid) as bad:
        world.bridge.lessons_of(pupil, monday, monday - timedelta(hours=1))
    assert bad.value.code == "lessons.invalid_range"
    last_days = datetime(9999, 12, 28, tzinfo=timezone.utc)  # its default week passes the calendar's end
    for start, end in ((last_days, None), (datetime.min.replace(tzinfo=timezone.utc), None)):
        with pytest.raises(Invalid) as bad:  # was an OverflowError: a 5xx
            world.bridge.lessons_of(pupil, start, end)
        assert bad.value.code == "lessons.invalid_range"


def test_linked_people_belong_to_the_organization_their_journal_school_is_bound_to_EJ_2(world):
    world.push_school()
    _, teacher, students = first_class(world)
    teacher_user = world.link(teacher)
    assert world.published("ejournal_bridge.JournalMembershipsChanged.v1") == []  # no school bound yet
    organization = uuid.uuid4()
    world.bridge.bind_school(world.provider.id, world.school.org["sourcedId"], organization)
    world.bridge.resync(world.provider.id)
    pupil = world.link(students[0])
    parent = world.link(world.school.user(students[0])["agents"][0])
    told = {e["user_id"]: (e["role"], e["organization_ids"], e["external_person_id"])
            for e in world.published("ejournal_bridge.JournalMembershipsChanged.v1")}
    assert told == {teacher_user: ("teacher", [organization], teacher), pupil: ("student", [organization], students[0]),
                    parent: ("parent", [organization], world.school.user(students[0])["agents"][0])}
    world.bridge.resync(world.provider.id)
    world.deliver("users.upserted", [world.school.user(students[0])])
    assert len(world.published("ejournal_bridge.JournalMembershipsChanged.v1")) == 3  # nothing new: told once


class Killed(BaseException):
    """The process dies mid-step (what SIGKILL leaves: nothing recorded after it, not even a failure)."""


def test_binding_a_school_resyncs_from_its_own_event_resumable_and_nothing_doubled_issue_17(world, monkeypatch):
    monkeypatch.setattr(resyncs, "RESYNC_CLASSES_STEP", 1)  # the world's 3 classes: 3 steps
    world.push_school()
    _, teacher, students = first_class(world)
    people = [teacher, *students[:3], world.school.user(students[0])["agents"][0]]
    users = {world.link(p) for p in people}
    org, organization = world.school.org["sourcedId"], uuid.uuid4()
    provider_id = world.provider.id

    _, resync = world.bridge.bind_school(provider_id, org, organization)
    # The bind only records: nothing is told to school nor to messaging until the resync's event is handled.
    assert (resync.state, world.bridge.school_resync(provider_id, org).state) == ("pending", "pending")
    assert world.published("ejournal_bridge.JournalMembershipsChanged.v1") == []
    [requested] = world.published("ejournal_bridge.SchoolResyncRequested.v1")
    assert (requested["resync_id"], requested["external_org_id"], requested["organization_id"]) == (
        resync.resync_id, org, organization)

    sent: list[str] = []

    def dying_after(steps: int):
        def chats(specs: list[dict]):
            if len({s["class_id"] for s in specs} | set(sent)) > steps and len(sent) >= steps:
                raise Killed()
            sent.append(specs[0]["class_id"])
            return world.define_system_chats(specs)
        return chats

    # The first run dies in its second class: one class's step recorded, the state still running.
    with pytest.raises(Killed):
        world.bridge.run_school_resync(provider_id, org, resync.resync_id, chats=dying_after(1))
    state = world.bridge.school_resync(provider_id, org)
    assert (state.state, state.people_done, state.people_total) == ("running", len(people), len(people))
    assert (state.classes_done, state.classes_total) == (1, 3)
    # A failure (an exception, not a death) is recorded with its reason; the consumer tries again.
    with pytest.raises(RuntimeError):
        world.bridge.run_school_resync(provider_id, org, resync.resync_id,
                                       chats=lambda specs: (_ for _ in ()).throw(RuntimeError("messaging is away")))
    state = world.bridge.school_resync(provider_id, org)
    assert (state.state, state.classes_done) == ("failed", 1) and "messaging is away" in state.error
    resumed: list[str] = []
    organizations: set[str] = set()

    def recording(specs: list[dict]):
        resumed.extend(s["class_id"] for s in specs)
        organizations.update(s["organization_id"] for s in specs if not s.get("retire"))
        return world.define_system_chats(specs)

    result = world.bridge.run_school_resync(provider_id, org, resync.resync_id, chats=recording)
    state = world.bridge.school_resync(provider_id, org)
    assert (state.state, state.classes_done, state.classes_total, state.error) == ("done", 3, 3, None)
    assert result["state"] == "done" and state.finished_at is not None
    # It resumed after the class recorded: the other two classes' chats, not the first's again.
    assert sent[0] not in resumed and len(set(resumed)) == 2
    # A redelivery of the request changes nothing.
    bridge_head = world.bridge.process_recorder.max_notification_id()
    assert world.bridge.run_school_resync(provider_id, org, resync.resync_id) == {"state": "skipped"}
    assert world.bridge.process_recorder.max_notification_id() == bridge_head
    # Everyone was told once (the resumed runs did not tell them again); the chats belong to the organization.
    told = world.published("ejournal_bridge.JournalMembershipsChanged.v1")
    assert sorted(e["user_id"] for e in told) == sorted(users)
    assert all(e["organization_ids"] == [organization] for e in told)
    assert organizations == {str(organization)}  # what messaging was told: the chats are the organization's
    # A second bind asks for a new resync: the old request, delivered late, does nothing.
    _, again = world.bridge.bind_school(provider_id, org, organization)
    assert again.resync_id != resync.resync_id and again.state == "pending"
    assert world.bridge.run_school_resync(provider_id, org, resync.resync_id) == {"state": "skipped"}
    assert world.bridge.run_school_resync(provider_id, org, again.resync_id)["state"] == "done"
    assert len(world.published("ejournal_bridge.JournalMembershipsChanged.v1")) == len(users)  # nothing changed


def test_chats_made_before_the_school_was_bound_become_the_organizations_when_it_is_EJ_2_CH_5(world):
    """The bridge makes a class's chats as soon as its teacher links, bound or not; the organization came only with
    a chat's creation, so chats made before the bind stayed nobody's: the school's admins could not moderate them,
    quotas and reports knew no school. A bind's resync now gives them the organization."""
    world.push_school()
    _, teacher, students = first_class(world)
    teacher_user = world.link(teacher)
    pupil = world.link(students[0])
    before = world.chats_of(teacher_user)
    assert before and all(c.organization_id is None for c in before)
    organization = uuid.uuid4()
    _, resync = world.bridge.bind_school(world.provider.id, world.school.org["sourcedId"], organization)
    world.bridge.run_school_resync(world.provider.id, world.school.org["sourcedId"], resync.resync_id,
                                   chats=world.define_system_chats)
    after = {c.id: c for c in world.chats_of(teacher_user)}
    assert set(after) == {c.id for c in before}  # the same chats, not new ones
    assert all(str(c.organization_id) == str(organization) for c in after.values())
    listed = world.messaging.chat_list(pupil)[0]  # the read model follows
    assert listed and all(str(item["chat"]["organization_id"]) == str(organization) for item in listed)


def test_a_school_not_bound_has_no_binding(world):
    with pytest.raises(NotFound) as missing:
        world.bridge.school_resync(world.provider.id, "no-such-school")
    assert missing.value.code == "binding.not_found"


def test_one_journal_person_one_account_EJ_1(world):
    world.push_school()
    _, teacher, students = first_class(world)
    first = world.link(students[0])
    impostor = uuid.uuid4()
    world.users[students[0]] = impostor
    world.link(students[0])  # the same journal person signs in from another account
    assert world.bridge.links_of(first) == []
    assert [x.external_person_id for x in world.bridge.links_of(impostor)] == [students[0]]
    assert world.published("ejournal_bridge.EjournalAccountUnlinked.v1")[-1]["user_id"] == first
