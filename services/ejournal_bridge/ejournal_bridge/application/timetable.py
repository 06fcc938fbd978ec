"""The journal's timetable (EJ-4, EJ-5, CA-7): lessons scheduled, rescheduled, cancelled, published,
started and ended; a person's lessons and a lesson's subject chat (EJ-7, SC-13)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from ejournal_bridge.application.base import BridgeBase, log
from ejournal_bridge.application.inbox import parse_time
from ejournal_bridge.domain import BACKLOG_TTL, Backlog, JournalClass, Lesson, class_id_of
from shared.clock import utcnow
from shared.contracts.ejournal import subject_chat_key
from shared.errors import DomainError, Invalid

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

    def _lessons(self, provider_id, record, pending, affected, type_, at) -> None:
        """Timetable to events: new slots are scheduled, changed ones rescheduled (EJ-4); then what waited for the
        lesson applies (``_unpark``)."""
        key = Lesson.create_id(provider_id, record["sourcedId"])
        lesson = pending.get(key) or self.find(Lesson, key)
        if lesson is not None and self._stale(lesson, at, type_, record):
            return
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
        lesson.date(at)
        self._unpark(lesson, pending, affected)

    def _teaching(self, provider_id, pending, klass: JournalClass, teacher: str) -> None:
        person = self._person(pending, provider_id, teacher)
        teaches = teacher in klass.all_teachers()
        if (klass.external_id in person.classes) != teaches:
            person.set_class(klass.external_id, teaches)

    def _lessons_deleted(self, provider_id, record, pending, affected, type_, at) -> None:
        key = Lesson.create_id(provider_id, record["sourcedId"])
        lesson = pending.get(key) or self.find(Lesson, key)
        if lesson is None:  # its timetable record is still coming (a Lesson is made of one): it waits for it
            self._park(provider_id, pending, record, type_, at)
            return
        if self._stale(lesson, at, type_, record):
            return
        pending[key] = lesson
        lesson.date(at)  # cancelled already or not: a tombstone as of now
        if lesson.cancelled:
            return
        lesson.cancel(self._lesson_facts(lesson, pending))
        klass = self._class(pending, provider_id, lesson.external_class_id)
        klass.set_lesson(lesson.external_id, None, None)
        self._teaching(provider_id, pending, klass, lesson.external_teacher_id)
        affected.add(klass.external_id)

    def _lesson_action(self, provider_id, record, pending, affected, type_: str, at) -> None:
        """EJ-4, EJ-5, CA-7: the teacher publishes, starts or ends a remote lesson in the journal. One that came
        before what it needs (the lesson, its publish) waits for it (``Backlog``, ``Lesson.awaits``)."""
        key = Lesson.create_id(provider_id, record["sourcedId"])
        lesson = pending.get(key) or self.find(Lesson, key)
        action = type_.split(".")[1]
        if lesson is None or lesson.awaits(action):
            self._park(provider_id, pending, record, type_, at)
            return
        facts = self._lesson_facts(lesson, pending)
        if action == "published":
            lesson.publish(facts)
        elif action == "started":
            lesson.start(record.get("by"), facts)
        else:
            lesson.end(record.get("by"), facts)
        pending[key] = lesson
        if action == "published":
            self._unpark(lesson, pending, affected)

    def _backlog(self, pending: dict, provider_id) -> Backlog:
        """The provider's backlog, read once per command (made, with the command's save, the first time)."""
        key = Backlog.create_id(provider_id)
        if key not in pending:
            pending[key] = self.find(Backlog, key) or Backlog(provider_id=provider_id)
        return pending[key]

    def _park(self, provider_id, pending, record, type_: str, at: datetime) -> None:
        log.info("webhook record waits", extra={"type": type_, "record": record["sourcedId"]})
        self._backlog(pending, provider_id).park(record["sourcedId"], type_, record, at)

    def _unpark(self, lesson: Lesson, pending: dict, affected: set[str]) -> None:
        """What waited for this lesson and need wait no more, applied now, each taken out of the backlog in the
        same save (so once), in ``Backlog.waiting_for``'s order; asked again after each, as one may unblock the
        next (a publish, the start waiting for it)."""
        backlog = self._backlog(pending, lesson.provider_id)
        as_of = getattr(lesson, "as_of", None) or utcnow()  # the time of the record applying now
        for entry in backlog.waiting_for(lesson.external_id):
            if parse_time(entry["occurred_at"]) < as_of - BACKLOG_TTL:  # what it waited for came too late: a
                backlog.take(lesson.external_id, entry)  # start a week old would open a call nobody is in
                log.info("webhook record given up", extra={"type": entry["type"], "record": lesson.external_id})
        while True:
            ready = [e for e in backlog.waiting_for(lesson.external_id)
                     if e["type"] == "lessons.deleted" or not lesson.awaits(e["type"].split(".")[1])]
            if not ready:
                return
            entry = ready[0]
            backlog.take(lesson.external_id, entry)
            handler = self._lessons_deleted if entry["type"] == "lessons.deleted" else self._lesson_action
            try:
                handler(lesson.provider_id, entry["record"], pending, affected, entry["type"],
                        parse_time(entry["occurred_at"]))
            except DomainError as exc:  # as when it came: the journal's own rules forbid it
                log.warning("webhook record refused", extra={"type": entry["type"], "code": exc.code,
                                                             "record": lesson.external_id})

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
