"""Deliveries applied out of the order the journal produced them (the journal retries its webhooks; the bridge's
consumer retries a failed delivery after the next one went through): the mirror ends as the journal's latest
records say (each record's ``occurred_at``), and no record waiting for another is lost (EJ-2..EJ-5, CA-7, CA-8)."""

from __future__ import annotations

import inspect
import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from ejournal_bridge import handlers
from ejournal_bridge.application import BridgeApplication
from ejournal_bridge.domain import Enrollment, JournalClass, JournalPerson, Lesson
from ejournal_bridge.outbox import to_integration_events
from shared.contracts import make_event
from shared.contracts.api.ejournal_bridge import RegisterProvider
from shared.errors import Invalid
from shared.links import link_token
from shared.store import make_application
from tools.ejournal_sim.fixture import FixtureJournal, build_school
from tools.ejournal_sim.webhooks import sign

T0 = datetime(2025, 9, 1, 8, 0, tzinfo=timezone.utc)


def at(minutes: int) -> datetime:
    """When the journal produced a record: ``minutes`` after the school's import."""
    return T0 + timedelta(minutes=minutes)



class Bridge:
    """The bridge as its consumer drives it: each delivery stored, then its WebhookAccepted handled."""

    def __init__(self, config):
        self.school = build_school("16", classes=1, students=3, teachers=2)
        self.sent: list[dict] = []
        self.app = make_application(BridgeApplication, "ejournal_bridge", create_table=True, config=config,
                                    journal=FixtureJournal(self.school), chats=self.sent.extend)
        self.provider, self.secret = self.app.register_provider(RegisterProvider(
            "16", f"ЭШ-{uuid.uuid4().hex[:6]}", "http://journal.test", "client", "secret"))
        for n, (kind, records) in enumerate((("orgs", [self.school.org]), ("classes", self.school.classes),
                                             ("users", self.school.users),
                                             ("enrollments", self.school.enrollments))):
            self.consume(self.receive(f"{kind}.upserted", records, at(-10 + n)))

    def receive(self, type_: str, records: list[dict], occurred_at: datetime):
        body = json.dumps({"event_id": str(uuid.uuid4()), "type": type_, "occurred_at": occurred_at.isoformat(),
                           "records": records}, ensure_ascii=False).encode()
        ts = str(int(datetime.now(timezone.utc).timestamp()))
        delivery, _ = self.app.receive_webhook(self.provider.id, ts, sign(self.secret, ts, body), body)
        return delivery

    def consume(self, delivery) -> bool:
        event = make_event("ejournal_bridge.WebhookAccepted.v1", {
            "delivery_id": delivery.id, "provider_id": self.provider.id, "event_id": delivery.event_id,
            "type": delivery.type, "received_at": delivery.received_at},
            event_id=f"ejournal_bridge:{delivery.id}:WebhookAccepted.v1")
        return handlers.on_webhook_accepted(self.app, event)

    def published(self, name: str) -> list[tuple[int, dict]]:
        """The integration events ``name`` the bridge published: (the lesson's version -- calls' ``sequence`` --,
        data)."""
        found = []
        for n in self.app.process_recorder.select_notifications(start=1, limit=100_000):
            event = self.app.mapper.to_domain_event(n)
            for t, data, _ in to_integration_events(event):
                if t == f"ejournal_bridge.{name}.v1":
                    found.append((event.originator_version, data))
        return found

    def lesson(self, sourced_id: str) -> Lesson | None:
        return self.app.find(Lesson, Lesson.create_id(self.provider.id, sourced_id))

    def person(self, sourced_id: str) -> JournalPerson:
        return self.app.find(JournalPerson, JournalPerson.create_id(self.provider.id, sourced_id))

    def klass(self) -> JournalClass:
        external_id = self.school.classes[0]["sourcedId"]
        return self.app.find(JournalClass, JournalClass.create_id(self.provider.id, external_id))

    def link(self, sourced_id: str) -> str:
        user = uuid.uuid4()
        attempt, _ = self.app.start_link(user, self.provider.id, "http://platform/cb")
        args = (link_token("ejournal-link", attempt.id), sourced_id, "http://platform/cb")
        if "actor_id" in inspect.signature(self.app.finish_link).parameters:
            args = (user, *args)
        self.app.finish_link(*args)
        self.app.refresh_person(self.provider.id, sourced_id)
        return str(user)


@pytest.fixture
def bridge(store_settings) -> Bridge:
    return Bridge(store_settings)


def action(lesson: dict) -> list[dict]:
    return [{"sourcedId": lesson["sourcedId"], "by": lesson["teacher"]}]


def remote_lesson(bridge: Bridge, published: bool = False, minutes: int = 0) -> dict:
    lesson = {**bridge.school.lessons[0], "remote": True, "published": published}
    bridge.consume(bridge.receive("lessons.upserted", [lesson], at(minutes)))
    return lesson


# -- a lesson's start and end (EJ-5, CA-7, CA-8) --


def test_an_end_applied_before_its_start_is_kept_and_the_late_start_asks_for_no_call_CA_7_CA_8(bridge):
    lesson = remote_lesson(bridge, published=True)
    started = bridge.receive("lesson.started", action(lesson), at(5))
    ended = bridge.receive("lesson.ended", action(lesson), at(50))
    bridge.consume(ended)  # overtook the start
    bridge.consume(started)
    assert bridge.published("LessonStartRequested") == []  # no call left open holding the subject's slot (CA-8)
    assert len(bridge.published("LessonEndRequested")) == 1
    assert bridge.lesson(lesson["sourcedId"]).state == "ended"


def test_an_end_after_its_start_ends_it_as_of_a_later_version_than_the_start_CA_7(bridge):
    """calls ignores a start whose lesson was ended as of a later version (``LessonInfo.ended_after``): the
    end's version is the later one whatever order calls hears them in."""
    lesson = remote_lesson(bridge, published=True)
    bridge.consume(bridge.receive("lesson.started", action(lesson), at(5)))
    bridge.consume(bridge.receive("lesson.ended", action(lesson), at(50)))
    [(start_version, _)] = bridge.published("LessonStartRequested")
    [(end_version, _)] = bridge.published("LessonEndRequested")
    assert start_version < end_version


def test_a_start_before_its_publish_waits_for_it_and_is_not_lost_EJ_4_EJ_5(bridge):
    lesson = remote_lesson(bridge)
    started = bridge.receive("lesson.started", action(lesson), at(5))
    published = bridge.receive("lesson.published", [{"sourcedId": lesson["sourcedId"]}], at(2))
    bridge.consume(started)
    assert bridge.published("LessonStartRequested") == []  # not yet: it waits for the publish
    bridge.consume(published)
    assert len(bridge.published("LessonStartRequested")) == 1
    assert bridge.lesson(lesson["sourcedId"]).state == "started"
    assert bridge.consume(started) is False  # a redelivery changes nothing
    assert len(bridge.published("LessonStartRequested")) == 1


def test_a_start_before_its_lesson_is_in_the_timetable_waits_for_it_EJ_4_EJ_5(bridge):
    lesson = {**bridge.school.lessons[1], "remote": True, "published": True}
    started = bridge.receive("lesson.started", action(lesson), at(5))
    upserted = bridge.receive("lessons.upserted", [lesson], at(1))
    bridge.consume(started)
    bridge.consume(upserted)
    assert bridge.published("LessonPublished")
    [(_, start)] = bridge.published("LessonStartRequested")
    assert start["requested_by_external_id"] == lesson["teacher"]


def test_a_start_and_its_end_both_waiting_for_the_lesson_ask_for_no_call_CA_7_CA_8(bridge):
    lesson = {**bridge.school.lessons[1], "remote": True, "published": True}
    bridge.consume(bridge.receive("lesson.ended", action(lesson), at(50)))
    bridge.consume(bridge.receive("lesson.started", action(lesson), at(5)))
    bridge.consume(bridge.receive("lessons.upserted", [lesson], at(1)))
    assert bridge.published("LessonStartRequested") == []
    assert len(bridge.published("LessonEndRequested")) == 1
    assert bridge.lesson(lesson["sourcedId"]).state == "ended"


def test_a_replayed_inbox_applies_a_waiting_start_once_EJ_5(bridge):
    lesson = remote_lesson(bridge)
    bridge.consume(bridge.receive("lesson.started", action(lesson), at(5)))
    bridge.consume(bridge.receive("lesson.published", [{"sourcedId": lesson["sourcedId"]}], at(2)))
    bridge.app.replay_inbox(bridge.provider.id)
    assert len(bridge.published("LessonStartRequested")) == 1


def test_a_record_waits_for_its_lesson_a_week_at_most_EJ_5(bridge):
    """A start for a lesson that never comes is given up once the journal's records are ``BACKLOG_TTL`` past it:
    the provider's backlog does not grow for ever, and a week-old start opens no call."""
    from ejournal_bridge.domain import BACKLOG_TTL, Backlog

    lesson = {**bridge.school.lessons[1], "remote": True, "published": True}
    bridge.consume(bridge.receive("lesson.started", action(lesson), at(5)))
    other = bridge.school.lessons[2]
    later = at(5) + BACKLOG_TTL + timedelta(minutes=1)
    bridge.consume(bridge.receive("lesson.started", action(other), later))
    backlog = bridge.app.find(Backlog, Backlog.create_id(bridge.provider.id))
    assert set(backlog.waiting) == {other["sourcedId"]}
    bridge.consume(bridge.receive("lessons.upserted", [lesson], later))
    assert bridge.published("LessonStartRequested") == []


def test_a_start_whose_lesson_comes_a_week_late_is_given_up_when_it_comes_EJ_5_CA_8(bridge):
    """A review: a start waiting was given up only when another record was parked; its lesson coming 8 days later
    still asked for a call (a week late, holding the subject's slot)."""
    from ejournal_bridge.domain import BACKLOG_TTL, Backlog

    lesson = {**bridge.school.lessons[1], "remote": True, "published": True}
    bridge.consume(bridge.receive("lesson.started", action(lesson), at(5)))
    bridge.consume(bridge.receive("lessons.upserted", [lesson], at(5) + BACKLOG_TTL + timedelta(days=1)))
    assert bridge.published("LessonStartRequested") == []
    assert not bridge.app.find(Backlog, Backlog.create_id(bridge.provider.id)).waiting


def test_a_delivery_from_the_future_is_refused_EJ_4(bridge):
    """A review: each record is its entity as of ``occurred_at``; one dated in the future (a wrong clock or time
    offset at the journal) made every true record after it stale until then. Refused (the journal's own retry,
    with its clock put right, applies)."""
    future = datetime.now(timezone.utc) + timedelta(days=30)
    with pytest.raises(Invalid) as info:
        bridge.receive("users.upserted", [bridge.school.users[0]], future)
    assert info.value.code == "webhook.malformed"


# -- the timetable (EJ-4) --


def test_an_older_timetable_record_after_a_newer_one_changes_nothing_EJ_4(bridge):
    lesson = bridge.school.lessons[0]
    moved = {**lesson, "startsAt": "2030-01-01T10:00:00+00:00", "endsAt": "2030-01-01T10:45:00+00:00"}
    older = bridge.receive("lessons.upserted", [lesson], at(1))
    bridge.consume(bridge.receive("lessons.upserted", [moved], at(2)))
    bridge.consume(older)
    assert bridge.lesson(lesson["sourcedId"]).starts_at.year == 2030


def test_an_older_timetable_record_after_the_lessons_deletion_does_not_bring_it_back_EJ_4(bridge):
    lesson = bridge.school.lessons[0]
    bridge.consume(bridge.receive("lessons.upserted", [lesson], at(1)))
    older = bridge.receive("lessons.upserted", [{**lesson, "subject": "Астрономия"}], at(2))
    bridge.consume(bridge.receive("lessons.deleted", [{"sourcedId": lesson["sourcedId"]}], at(3)))
    bridge.consume(older)
    assert bridge.lesson(lesson["sourcedId"]).cancelled
    assert lesson["sourcedId"] not in bridge.klass().lessons


def test_a_deletion_before_its_lesson_is_in_the_timetable_is_not_lost_EJ_4(bridge):
    lesson = bridge.school.lessons[0]
    bridge.consume(bridge.receive("lessons.deleted", [{"sourcedId": lesson["sourcedId"]}], at(3)))
    bridge.consume(bridge.receive("lessons.upserted", [lesson], at(1)))
    assert bridge.lesson(lesson["sourcedId"]).cancelled
    assert lesson["sourcedId"] not in bridge.klass().lessons


# -- the roster (EJ-2, EJ-3) --


def test_an_older_user_record_after_the_users_deletion_does_not_bring_them_back_EJ_2(bridge):
    person = bridge.school.users[0]
    older = bridge.receive("users.upserted", [person], at(1))
    bridge.consume(bridge.receive("users.deleted", [{"sourcedId": person["sourcedId"]}], at(2)))
    bridge.consume(older)
    assert bridge.person(person["sourcedId"]).deleted is True


def test_a_newer_user_record_after_the_deletion_brings_them_back_EJ_2(bridge):
    person = bridge.school.users[0]
    newer = bridge.receive("users.upserted", [person], at(3))
    bridge.consume(bridge.receive("users.deleted", [{"sourcedId": person["sourcedId"]}], at(2)))
    bridge.consume(newer)
    assert bridge.person(person["sourcedId"]).deleted is False


def test_a_deleted_linked_pupil_stays_out_of_the_class_chat_after_an_older_delivery_EJ_3(bridge):
    klass = bridge.school.classes[0]["sourcedId"]
    pupil = bridge.school.user(bridge.school.students_of(klass)[0])
    bridge.link(bridge.school.class_teacher(klass))
    account = bridge.link(pupil["sourcedId"])

    def in_students_chat() -> bool:
        specs = [s for s in bridge.sent if s.get("kind") == "class_students"]
        return account in specs[-1]["member_ids"]

    assert in_students_chat()
    older = bridge.receive("users.upserted", [pupil], at(1))
    bridge.consume(bridge.receive("users.deleted", [{"sourcedId": pupil["sourcedId"]}], at(2)))
    assert not in_students_chat()
    bridge.consume(older)
    assert not in_students_chat()


def test_an_older_class_record_after_the_class_deletion_does_not_bring_it_back_EJ_3(bridge):
    klass = bridge.school.classes[0]
    older = bridge.receive("classes.upserted", [{**klass, "title": "11Я"}], at(1))
    bridge.consume(bridge.receive("classes.deleted", [{"sourcedId": klass["sourcedId"]}], at(2)))
    bridge.consume(older)
    assert bridge.klass().deleted is True and bridge.klass().title == klass["title"]


def test_an_older_enrollment_after_its_deletion_does_not_enroll_again_EJ_3(bridge):
    enrollment = next(e for e in bridge.school.enrollments if e["role"] == "student")
    older = bridge.receive("enrollments.upserted", [enrollment], at(1))
    bridge.consume(bridge.receive("enrollments.deleted", [{"sourcedId": enrollment["sourcedId"]}], at(2)))
    bridge.consume(older)
    assert enrollment["user"] not in bridge.klass().students


def test_a_deletion_of_an_enrollment_not_seen_yet_is_kept_for_its_older_record_EJ_3(bridge):
    enrollment = {"sourcedId": "r16-enr-late", "class": bridge.school.classes[0]["sourcedId"],
                  "user": "r16-student-late", "role": "student"}
    assert enrollment["user"] not in bridge.klass().students
    bridge.consume(bridge.receive("enrollments.deleted", [{"sourcedId": enrollment["sourcedId"]}], at(2)))
    bridge.consume(bridge.receive("enrollments.upserted", [enrollment], at(1)))
    assert enrollment["user"] not in bridge.klass().students
    assert not bridge.app.find(Enrollment, Enrollment.create_id(bridge.provider.id, enrollment["sourcedId"])).active


def test_an_entity_stored_before_records_were_dated_takes_the_next_record_whatever_its_time(bridge):
    """Stored state from before: a mirror entity whose events carry no record time is stale to no record."""
    old = JournalPerson(provider_id=bridge.provider.id, external_id="r16-old")
    old.upsert("student", "Анна", "Новикова", [bridge.school.org["sourcedId"]])
    bridge.app.save(old)
    assert not bridge.person("r16-old").stale(at(-1000))
    bridge.consume(bridge.receive("users.deleted", [{"sourcedId": "r16-old"}], at(-1000)))
    assert bridge.person("r16-old").deleted
