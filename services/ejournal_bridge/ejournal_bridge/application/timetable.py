"""The journal's timetable (EJ-4, EJ-5, CA-7): lessons scheduled, rescheduled, cancelled, published,
started and ended; a person's lessons and a lesson's subject chat (EJ-7, SC-13)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from ejournal_bridge.application.base import BridgeBase
from ejournal_bridge.application.inbox import parse_time
from ejournal_bridge.domain import JournalClass, Lesson, class_id_of
from shared.clock import utcnow
from shared.contracts.ejournal import subject_chat_key
from shared.errors import Invalid, NotFound

LESSONS_DEFAULT_SPAN = timedelta(days=7)  # "today's and this week's lessons"


LESSONS_MAX_SPAN = timedelta(days=31)
# a timetable is asked of these years only: a start near the calendar's end made the default week overflow (a 5xx)
LESSONS_YEARS = (2000, 2199)


class Timetable(BridgeBase):
    def _facts(self, provider_id: uuid.UUID, pending: dict, external_id: str, class_ext: str, subject: str,
               teacher: str, starts: datetime, ends: datetime, remote: bool) -> dict:
        provider = self._pending_provider(pending, provider_id)
        klass = self._class(pending, provider_id, class_ext)
        teacher_user = self._person(pending, provider_id, teacher).user_id
        organization = provider.organization_of(klass.org)
        return {"lesson_id": str(Lesson.create_id(provider_id, external_id)), "provider_id": str(provider_id),
                "region": provider.region, "external_lesson_id": external_id,
                "organization_id": str(organization) if organization else None,
                "class_id": str(class_id_of(provider_id, class_ext)), "external_class_id": class_ext,
                "class_title": klass.title, "subject": subject,
                "teacher_user_id": str(teacher_user) if teacher_user else None, "external_teacher_id": teacher,
                "starts_at": starts, "ends_at": ends, "remote": remote}

    def _lesson_facts(self, lesson: Lesson, pending: dict) -> dict:
        return self._facts(lesson.provider_id, pending, lesson.external_id, lesson.external_class_id, lesson.subject,
                           lesson.external_teacher_id, lesson.starts_at, lesson.ends_at, lesson.remote)

    def _lessons(self, provider_id, record, pending, affected, _type) -> None:
        """Timetable to events: new slots are scheduled, changed ones rescheduled (EJ-4)."""
        key = Lesson.create_id(provider_id, record["sourcedId"])
        lesson = pending.get(key) or self.find(Lesson, key)
        starts, ends = parse_time(record["startsAt"]), parse_time(record["endsAt"])
        remote = bool(record.get("remote", False))
        facts = self._facts(provider_id, pending, record["sourcedId"], record["class"], record["subject"],
                            record["teacher"], starts, ends, remote)
        previous_teacher = None
        if lesson is None:
            lesson = Lesson(provider_id=provider_id, external_id=record["sourcedId"],
                            external_class_id=record["class"], subject=record["subject"],
                            external_teacher_id=record["teacher"], starts_at=starts, ends_at=ends, remote=remote,
                            facts=facts)
        elif not lesson.same(record["subject"], record["teacher"], starts, ends, remote):
            previous_teacher = lesson.external_teacher_id
            lesson.reschedule(record["subject"], record["teacher"], starts, ends, remote, facts)
        pending[key] = lesson
        if record.get("published") and remote:
            lesson.publish(facts)
        klass = self._class(pending, provider_id, lesson.external_class_id)
        if klass.lessons.get(lesson.external_id) != [lesson.subject, lesson.external_teacher_id]:
            klass.set_lesson(lesson.external_id, lesson.subject, lesson.external_teacher_id)
        self._teaching(provider_id, pending, klass, lesson.external_teacher_id)
        if previous_teacher and previous_teacher != lesson.external_teacher_id:
            self._teaching(provider_id, pending, klass, previous_teacher)
        affected.add(klass.external_id)

    def _teaching(self, provider_id, pending, klass: JournalClass, teacher: str) -> None:
        person = self._person(pending, provider_id, teacher)
        teaches = teacher in klass.all_teachers()
        if (klass.external_id in person.classes) != teaches:
            person.set_class(klass.external_id, teaches)

    def _lessons_deleted(self, provider_id, record, pending, affected, _type) -> None:
        key = Lesson.create_id(provider_id, record["sourcedId"])
        lesson = pending.get(key) or self.find(Lesson, key)
        if lesson is None or lesson.cancelled:
            return
        lesson.cancel(self._lesson_facts(lesson, pending))
        pending[key] = lesson
        klass = self._class(pending, provider_id, lesson.external_class_id)
        klass.set_lesson(lesson.external_id, None, None)
        self._teaching(provider_id, pending, klass, lesson.external_teacher_id)
        affected.add(klass.external_id)

    def _lesson_action(self, provider_id, record, pending, affected, type_: str) -> None:
        """EJ-4, EJ-5, CA-7: the teacher publishes, starts or ends a remote lesson in the journal."""
        key = Lesson.create_id(provider_id, record["sourcedId"])
        lesson = pending.get(key) or self.find(Lesson, key)
        if lesson is None:
            raise NotFound("lesson.not_found", "No such lesson in the timetable.")
        facts = self._lesson_facts(lesson, pending)
        action = type_.split(".")[1]
        if action == "published":
            lesson.publish(facts)
        elif action == "started":
            lesson.start(record.get("by"), facts)
        else:
            lesson.end(record.get("by"), facts)
        pending[key] = lesson

    def lessons_of(self, user_id: uuid.UUID, start: datetime | None = None, end: datetime | None = None
                   ) -> list[dict]:
        """The lessons a person has between ``start`` and ``end`` (default: today and the six days after),
        from the mirror of every journal they linked: a pupil's class lessons, a parent's children's, the
        lessons a teacher teaches. A lesson id here is the one ``/lessons/{id}/call`` takes."""
        start = start or utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
        first, last = LESSONS_YEARS
        if not first <= start.year <= last or end is not None and not first <= end.year <= last:
            raise Invalid("lessons.invalid_range", f"'from' and 'to' fall in the years {first} to {last}.",
                          {"from": start.isoformat(), "to": end.isoformat() if end else None})
        end = end or start + LESSONS_DEFAULT_SPAN
        if end <= start or end - start > LESSONS_MAX_SPAN:
            raise Invalid("lessons.invalid_range", f"'to' comes after 'from', at most {LESSONS_MAX_SPAN.days} days "
                                                   "later.", {"from": start.isoformat(), "to": end.isoformat()})
        rows = []
        for link in self.links_of(user_id):
            pending: dict = {}
            person = self._person(pending, link.provider_id, link.external_person_id)
            for class_ext in sorted(self._classes_of(person, pending)):
                klass = self.find(JournalClass, JournalClass.create_id(link.provider_id, class_ext))
                if klass is None or klass.deleted:
                    continue
                for lesson_ext, (_, teacher) in klass.lessons.items():
                    teaching = teacher == person.external_id
                    if person.role == "teacher" and not teaching:
                        continue  # a teacher's timetable is the lessons they teach
                    lesson = self.find(Lesson, Lesson.create_id(link.provider_id, lesson_ext))
                    if lesson is None or lesson.cancelled or not (lesson.starts_at < end and lesson.ends_at > start):
                        continue
                    rows.append({"lesson_id": lesson.id, "provider_id": link.provider_id,
                                 "external_lesson_id": lesson.external_id,
                                 "class_id": class_id_of(link.provider_id, class_ext), "class_title": klass.title,
                                 "subject": lesson.subject, "starts_at": lesson.starts_at, "ends_at": lesson.ends_at,
                                 "remote": lesson.remote, "published": lesson.published, "state": lesson.state,
                                 "teaching": teaching})
        return sorted(rows, key=lambda r: (r["starts_at"], r["class_title"] or "", r["subject"]))

    def lesson(self, lesson_id: uuid.UUID) -> Lesson:
        return self.get_as(Lesson, lesson_id, "lesson.not_found", "No such lesson.")

    def lesson_chat_key(self, provider_id: uuid.UUID, external_lesson_id: str) -> str:
        """EJ-7: the journal's lesson page opens the lesson's subject chat: the chat's key."""
        lesson = self.lesson(Lesson.create_id(provider_id, external_lesson_id))
        return subject_chat_key(provider_id, lesson.external_class_id, lesson.subject, lesson.external_teacher_id)
