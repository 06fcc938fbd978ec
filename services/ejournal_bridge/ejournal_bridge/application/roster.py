"""The mirror of the journal's roster: organizations, classes, people and their relatives, enrollments
(OneRoster records of a delivery, applied to the aggregates of one command)."""

from __future__ import annotations

from ejournal_bridge.application.base import BridgeBase, log
from ejournal_bridge.application.inbox import parse_time
from ejournal_bridge.domain import Delivery, Enrollment
from shared.errors import DomainError


class Roster(BridgeBase):
    def _apply(self, delivery: Delivery, pending: dict, affected: set[str], records: list[dict] | None = None) -> None:
        """The delivery's ``records`` (all of them by default) to the mirror's aggregates in ``pending``, each as of
        the delivery's ``occurred_at``: a record older than what its entity was given last is stale (``_stale``)."""
        provider_id, body = delivery.provider_id, delivery.body
        occurred_at = parse_time(body["occurred_at"])
        handler = {
            "orgs.upserted": self._orgs, "academicSessions.upserted": lambda *_: None,
            "classes.upserted": self._classes, "classes.deleted": self._classes_deleted,
            "users.upserted": self._users, "users.deleted": self._users_deleted,
            "enrollments.upserted": self._enrollments, "enrollments.deleted": self._enrollments_deleted,
            "lessons.upserted": self._lessons, "lessons.deleted": self._lessons_deleted,
            "lesson.published": self._lesson_action, "lesson.started": self._lesson_action,
            "lesson.ended": self._lesson_action,
        }[body["type"]]
        for record in body["records"] if records is None else records:
            try:
                handler(provider_id, record, pending, affected, body["type"], occurred_at)
            except DomainError as exc:
                # The journal sent something its own rules forbid (e.g. publishing a
                # lesson that is not remote): that record is skipped, the rest applies.
                log.warning("webhook record refused", extra={"delivery": str(delivery.id), "code": exc.code,
                                                             "record": record.get("sourcedId")})

    def _orgs(self, provider_id, record, pending, affected, _type, _at) -> None:
        provider = self._pending_provider(pending, provider_id)
        provider.see_org(record["sourcedId"], record["name"])

    def _classes(self, provider_id, record, pending, affected, type_, at) -> None:
        klass = self._class(pending, provider_id, record["sourcedId"])
        if self._stale(klass, at, type_, record):
            return
        if (klass.title, klass.org, klass.deleted) != (record["title"], record["org"], False):
            klass.upsert(record["title"], record["org"])
        klass.date(at)
        affected.add(klass.external_id)

    def _classes_deleted(self, provider_id, record, pending, affected, type_, at) -> None:
        klass = self._class(pending, provider_id, record["sourcedId"])
        if self._stale(klass, at, type_, record):
            return
        if not klass.deleted:
            klass.upsert(klass.title, klass.org, deleted=True)
        klass.date(at)
        affected.add(klass.external_id)

    def _users(self, provider_id, record, pending, affected, type_, at) -> None:
        person = self._person(pending, provider_id, record["sourcedId"])
        if self._stale(person, at, type_, record):
            return
        person.date(at)
        state = (record["role"], record["givenName"], record["familyName"], sorted(record["orgs"]), False)
        if (person.role, person.given_name, person.family_name, person.orgs, person.deleted) != state:
            person.upsert(*state[:4])
        agents = sorted(set(record.get("agents", [])))
        previous = set(person.relatives)
        if agents != person.relatives:
            person.relate(agents)
        # OneRoster agents go both ways: a parent's children list the parent, and back.
        for other_id in previous ^ set(agents):
            other = self._person(pending, provider_id, other_id)
            wanted = (set(other.relatives) | {person.external_id}) if other_id in agents else (
                set(other.relatives) - {person.external_id})
            if sorted(wanted) != other.relatives:
                other.relate(sorted(wanted))
            affected |= self._classes_of(other, pending)
        affected |= self._classes_of(person, pending)

    def _users_deleted(self, provider_id, record, pending, affected, type_, at) -> None:
        person = self._person(pending, provider_id, record["sourcedId"])
        if self._stale(person, at, type_, record):
            return
        person.date(at)
        if not person.deleted:
            person.upsert(person.role or "student", person.given_name, person.family_name, person.orgs,
                          deleted=True)
        affected |= self._classes_of(person, pending)

    def _enroll(self, provider_id, pending, affected, class_ext: str, user: str, role: str, primary: bool,
                present: bool) -> None:
        klass = self._class(pending, provider_id, class_ext)
        if role == "student":
            changed = (user in klass.students) != present
        else:
            changed = klass.teachers.get(user) != primary if present else user in klass.teachers
        if changed:
            klass.enroll(user, role, primary, present)
        person = self._person(pending, provider_id, user)
        teaching_still = role == "teacher" and not present and user in klass.all_teachers()
        if (class_ext in person.classes) != (present or teaching_still):
            person.set_class(class_ext, present or teaching_still)
        affected.add(class_ext)

    def _enrollments(self, provider_id, record, pending, affected, type_, at) -> None:
        key = Enrollment.create_id(provider_id, record["sourcedId"])
        enrollment = pending.get(key) or self.find(Enrollment, key)
        if enrollment is not None and self._stale(enrollment, at, type_, record):
            return
        primary = bool(record.get("primary", False))
        if enrollment is None:
            pending[key] = Enrollment(provider_id=provider_id, external_id=record["sourcedId"],
                                      class_id=record["class"], user=record["user"], role=record["role"],
                                      primary=primary)
        else:
            if (enrollment.class_id, enrollment.user) != (record["class"], record["user"]) and enrollment.active:
                self._enroll(provider_id, pending, affected, enrollment.class_id, enrollment.user, enrollment.role,
                             False, False)
            state = (record["class"], record["user"], record["role"], primary, True)
            if (enrollment.class_id, enrollment.user, enrollment.role, enrollment.primary,
                    enrollment.active) != state:
                enrollment.change(*state)
            pending[key] = enrollment
        pending[key].date(at)
        self._enroll(provider_id, pending, affected, record["class"], record["user"], record["role"], primary, True)

    def _enrollments_deleted(self, provider_id, record, pending, affected, type_, at) -> None:
        key = Enrollment.create_id(provider_id, record["sourcedId"])
        enrollment = pending.get(key) or self.find(Enrollment, key)
        if enrollment is None:  # its record is still coming: a tombstone, so that record, older, is stale
            enrollment = Enrollment(provider_id=provider_id, external_id=record["sourcedId"], class_id="", user="",
                                    role="", primary=False, active=False)
        elif self._stale(enrollment, at, type_, record):
            return
        elif enrollment.active:
            enrollment.change(enrollment.class_id, enrollment.user, enrollment.role, enrollment.primary, False)
            self._enroll(provider_id, pending, affected, enrollment.class_id, enrollment.user, enrollment.role,
                         False, False)
        enrollment.date(at)
        pending[key] = enrollment
