"""The e-journal bridge's application (docs/rules.md EJ-1..EJ-5, CH-2).

Webhooks are verified, stored in the inbox and acknowledged; the bridge then
processes each delivery once (its own ``WebhookAccepted`` event through the
outbox and a consumer), applying it to its mirror of the journal's roster and
timetable. A process manager turns the mirror and the account links into
chats: the class teacher's three, one per (class, subject, teacher), members
being whoever is linked, through messaging's idempotent command.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlencode

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from ejournal_bridge.domain import (
    LINK_ATTEMPT_TTL,
    PARENT_ROLES,
    SCHOOL_ROLES,
    AccountLink,
    Delivery,
    Directory,
    Enrollment,
    JournalClass,
    JournalPerson,
    Lesson,
    LinkAttempt,
    Provider,
    class_id_of,
)
from shared.clock import utcnow
from shared.contracts.ejournal import subject_chat_key
from shared.errors import DomainError, Invalid, NotFound
from shared.links import link_id_from_token, link_token
from shared.observability.logging import get_logger
from shared.secretbox import SecretBox
from shared.store import ServiceApplication

log = get_logger("ejournal_bridge")
LESSONS_DEFAULT_SPAN = timedelta(days=7)  # "today's and this week's lessons"
LESSONS_MAX_SPAN = timedelta(days=31)
SCHEMA_PATH = Path(__file__).resolve().parents[3] / "docs" / "ejournal" / "webhook.schema.json"


@lru_cache(maxsize=1)
def webhook_validator():
    from jsonschema import Draft202012Validator

    schema = json.loads(SCHEMA_PATH.read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError("a time needs its offset")
    return parsed


def check_webhook_body(raw: bytes) -> dict:
    """The body against the published JSON Schema, and its times parsed: a bad one
    is refused (400) before anything is stored."""
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise Invalid("webhook.malformed", "The body is not JSON.") from None
    errors = sorted(webhook_validator().iter_errors(body), key=lambda e: list(e.absolute_path))
    if errors:
        raise Invalid("webhook.malformed", "The body does not follow the webhook schema.",
                      {"errors": [{"path": "/".join(map(str, e.absolute_path)), "message": e.message[:300]}
                                  for e in errors[:10]]})
    try:
        parse_time(body["occurred_at"])
        for record in body["records"]:
            for key in ("startsAt", "endsAt"):
                if key in record:
                    parse_time(record[key])
            if "startsAt" in record and parse_time(record["endsAt"]) <= parse_time(record["startsAt"]):
                raise ValueError("endsAt before startsAt")
    except ValueError as exc:
        raise Invalid("webhook.malformed", f"A time is not valid: {exc}.") from None
    return body


class JournalClient(Protocol):
    """What the bridge asks of an e-journal over HTTP (OAuth 2 token endpoint and the signed-in person)."""

    def exchange_code(self, provider: Provider, code: str, redirect_uri: str, code_verifier: str,
                      client_secret: str) -> str: ...

    def me(self, provider: Provider, access_token: str) -> dict: ...


ChatSink = Callable[[list[dict]], Any]


class BridgeApplication(ServiceApplication):
    name = "ejournal_bridge"
    snapshotting_intervals = {JournalClass: 100, JournalPerson: 50, Provider: 50, Directory: 50}

    def __init__(self, env: Any = None, journal: JournalClient | None = None, chats: ChatSink | None = None):
        super().__init__(env)
        self.journal = journal
        self.chats = chats
        self.box = SecretBox.from_settings()  # seals the providers' secrets (SFERA_SECRETS_KEYS)

    # -- providers (operators) ---------------------------------------------------------------------
    def provider(self, provider_id: uuid.UUID) -> Provider:
        return self.get_as(Provider, provider_id, "provider.not_found", "No such e-journal.")

    def register_provider(self, region: str, name: str, base_url: str, client_id: str,
                          client_secret: str) -> tuple[Provider, str]:
        """Returns the provider and its first webhook secret (shown once)."""
        if not base_url.startswith(("https://", "http://")):
            raise Invalid("provider.invalid_url", "The base URL is an http(s) URL.")
        webhook_secret = secrets.token_urlsafe(32)

        def command() -> Provider:
            directory = self.find(Directory, Directory.create_id()) or Directory()
            if any(p["region"] == region and p["name"].casefold() == name.casefold()
                   for p in directory.providers.values()):
                raise Invalid("provider.exists", "This region already has an e-journal of that name.")
            provider = Provider(region=region, name=name, base_url=base_url, client_id=client_id,
                                client_secret=self.box.seal(client_secret),
                                webhook_secret=self.box.seal(webhook_secret), registered_at=utcnow())
            directory.add(provider.id, region, name)
            self.save(directory, provider)
            return provider

        return self.retrying(command, "directory"), webhook_secret

    def providers(self, region: str | None = None) -> list[Provider]:
        directory = self.find(Directory, Directory.create_id())
        found = [self.provider(uuid.UUID(p)) for p, v in (directory.providers.items() if directory else [])
                 if region is None or v["region"] == region]
        return sorted(found, key=lambda p: (p.region, p.name))

    def rotate_secret(self, provider_id: uuid.UUID, grace: timedelta) -> str:
        """A new webhook secret; the old one keeps verifying until the grace period ends."""
        if not timedelta(0) <= grace <= timedelta(days=30):
            raise Invalid("provider.invalid_grace", "The grace period is 0 to 30 days.")
        new_secret = secrets.token_urlsafe(32)

        def command() -> str:
            provider = self.provider(provider_id)
            provider.rotate_secret(self.box.seal(new_secret), utcnow(), grace)
            self.save(provider)
            return new_secret

        return self.retrying(command, ("provider", provider_id))

    def open_client_secret(self, provider: Provider) -> str:
        return self.box.open(provider.client_secret)

    def reseal_secrets(self) -> int:
        """Every provider's secrets sealed with the newest of SFERA_SECRETS_KEYS (after a new
        key is put first; then the old one can be removed). How many providers changed."""
        directory = self.find(Directory, Directory.create_id())
        changed = 0
        for provider_id in map(uuid.UUID, directory.providers if directory else []):
            def command(provider_id: uuid.UUID = provider_id) -> bool:
                provider = self.provider(provider_id)
                if not provider.reseal(self.box.reseal):
                    return False
                self.save(provider)
                return True

            changed += self.retrying(command, ("provider", provider_id))
        return changed

    def bind_school(self, provider_id: uuid.UUID, external_org_id: str, organization_id: uuid.UUID) -> Provider:
        """A journal's school is a platform organization: its chats belong to it (admins moderate them)."""
        def command() -> Provider:
            provider = self.provider(provider_id)
            provider.bind_school(external_org_id, organization_id)
            self.save(provider)
            return provider

        provider = self.retrying(command, ("provider", provider_id))
        return provider

    # -- webhooks: verify, store, acknowledge ------------------------------------------------------------
    def receive_webhook(self, provider_id: uuid.UUID, timestamp: str, signature: str, raw: bytes,
                        now: datetime | None = None) -> tuple[Delivery, bool]:
        """Returns the delivery and whether it is a repeat (which changes nothing)."""
        provider = self.provider(provider_id)
        provider.verify(timestamp, signature, raw, now or utcnow(), self.box.open)
        body = check_webhook_body(raw)
        delivery_id = Delivery.create_id(provider_id, body["event_id"])
        existing = self.find(Delivery, delivery_id)
        if existing is not None:
            return existing, True
        delivery = Delivery(provider_id=provider_id, event_id=body["event_id"], type=body["type"], body=body,
                            received_at=now or utcnow())
        try:
            self.save(delivery)
        except IntegrityError:
            again = self.find(Delivery, delivery_id)  # a concurrent copy of the same delivery won
            if again is None:
                raise
            return again, True
        return delivery, False

    # -- processing a delivery: the mirror, then the chats --------------------------------------------------
    def process_delivery(self, delivery_id: uuid.UUID, event_id: str, chats: ChatSink | None = None) -> bool:
        """Apply a stored delivery to the mirror once, then bring the chats of the
        classes it touched in line (idempotent: safe to repeat after a failure)."""
        delivery = self.get_as(Delivery, delivery_id, "delivery.not_found", "No such delivery.")
        affected: set[str] = set()
        linked: list[str] = []  # the linked people it touched: their organizations may have changed (EJ-2)

        def command() -> bool:
            pending: dict[uuid.UUID, Aggregate] = {}
            affected.clear()
            self._apply(delivery, pending, affected)
            linked[:] = [p.external_id for p in pending.values() if isinstance(p, JournalPerson) and p.user_id]
            return self.process_once(event_id, *pending.values())

        applied = self.retrying(command, ("provider", delivery.provider_id))
        if not applied:
            affected.update(self._touched_classes(delivery))
        self.sync_chats(delivery.provider_id, affected, chats)
        if delivery.body["type"].startswith("users."):
            # Applied once before (a retry after a failure here): every person of the delivery is looked at.
            self.announce_memberships(delivery.provider_id,
                                      linked if applied else [r["sourcedId"] for r in delivery.body["records"]])
        return applied

    def _get(self, cls: type, pending: dict, provider_id: uuid.UUID, external_id: str) -> Any:
        aggregate_id = cls.create_id(provider_id, external_id)
        if aggregate_id not in pending:
            pending[aggregate_id] = self.find(cls, aggregate_id) or cls(provider_id=provider_id,
                                                                        external_id=external_id)
        return pending[aggregate_id]

    def _pending_provider(self, pending: dict, provider_id: uuid.UUID) -> Provider:
        """The provider, loaded once per delivery (every lesson of a delivery needs it)."""
        if provider_id not in pending:
            pending[provider_id] = self.provider(provider_id)
        return pending[provider_id]

    def _person(self, pending: dict, provider_id: uuid.UUID, external_id: str) -> JournalPerson:
        return self._get(JournalPerson, pending, provider_id, external_id)

    def _class(self, pending: dict, provider_id: uuid.UUID, external_id: str) -> JournalClass:
        return self._get(JournalClass, pending, provider_id, external_id)

    def _classes_of(self, person: JournalPerson, pending: dict) -> set[str]:
        """The classes whose chats this person is in: their own, and a parent's children's."""
        found = set(person.classes)
        if person.role in PARENT_ROLES:
            for child in person.relatives:
                found |= set(self._person(pending, person.provider_id, child).classes)
        return found

    def _touched_classes(self, delivery: Delivery) -> set[str]:
        pending: dict = {}
        provider_id, body = delivery.provider_id, delivery.body
        kind = body["type"].split(".")[0]
        found: set[str] = set()
        for record in body["records"]:
            if kind == "classes":
                found.add(record["sourcedId"])
            elif kind == "users":
                found |= self._classes_of(self._person(pending, provider_id, record["sourcedId"]), pending)
            elif kind == "enrollments":
                enrollment = self.find(Enrollment, Enrollment.create_id(provider_id, record["sourcedId"]))
                if enrollment is not None:
                    found.add(enrollment.class_id)
            elif kind in ("lessons", "lesson"):
                lesson = self.find(Lesson, Lesson.create_id(provider_id, record["sourcedId"]))
                if lesson is not None:
                    found.add(lesson.external_class_id)
        return found

    def _apply(self, delivery: Delivery, pending: dict, affected: set[str]) -> None:
        provider_id, body = delivery.provider_id, delivery.body
        handler = {
            "orgs.upserted": self._orgs, "academicSessions.upserted": lambda *_: None,
            "classes.upserted": self._classes, "classes.deleted": self._classes_deleted,
            "users.upserted": self._users, "users.deleted": self._users_deleted,
            "enrollments.upserted": self._enrollments, "enrollments.deleted": self._enrollments_deleted,
            "lessons.upserted": self._lessons, "lessons.deleted": self._lessons_deleted,
            "lesson.published": self._lesson_action, "lesson.started": self._lesson_action,
            "lesson.ended": self._lesson_action,
        }[body["type"]]
        for record in body["records"]:
            try:
                handler(provider_id, record, pending, affected, body["type"])
            except DomainError as exc:
                # The journal sent something its own rules forbid (e.g. publishing a
                # lesson that is not remote): that record is skipped, the rest applies.
                log.warning("webhook record refused", extra={"delivery": str(delivery.id), "code": exc.code,
                                                             "record": record.get("sourcedId")})

    def _orgs(self, provider_id, record, pending, affected, _type) -> None:
        provider = self._pending_provider(pending, provider_id)
        provider.see_org(record["sourcedId"], record["name"])

    def _classes(self, provider_id, record, pending, affected, _type) -> None:
        klass = self._class(pending, provider_id, record["sourcedId"])
        if (klass.title, klass.org, klass.deleted) != (record["title"], record["org"], False):
            klass.upsert(record["title"], record["org"])
        affected.add(klass.external_id)

    def _classes_deleted(self, provider_id, record, pending, affected, _type) -> None:
        klass = self._class(pending, provider_id, record["sourcedId"])
        if not klass.deleted:
            klass.upsert(klass.title, klass.org, deleted=True)
        affected.add(klass.external_id)

    def _users(self, provider_id, record, pending, affected, _type) -> None:
        person = self._person(pending, provider_id, record["sourcedId"])
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

    def _users_deleted(self, provider_id, record, pending, affected, _type) -> None:
        person = self._person(pending, provider_id, record["sourcedId"])
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

    def _enrollments(self, provider_id, record, pending, affected, _type) -> None:
        key = Enrollment.create_id(provider_id, record["sourcedId"])
        enrollment = pending.get(key) or self.find(Enrollment, key)
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
        self._enroll(provider_id, pending, affected, record["class"], record["user"], record["role"], primary, True)

    def _enrollments_deleted(self, provider_id, record, pending, affected, _type) -> None:
        key = Enrollment.create_id(provider_id, record["sourcedId"])
        enrollment = pending.get(key) or self.find(Enrollment, key)
        if enrollment is None or not enrollment.active:
            return
        enrollment.change(enrollment.class_id, enrollment.user, enrollment.role, enrollment.primary, False)
        pending[key] = enrollment
        self._enroll(provider_id, pending, affected, enrollment.class_id, enrollment.user, enrollment.role, False,
                     False)

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

    # -- the process manager: chats from the mirror and the links (EJ-3, EJ-4, CH-2) -------------------------
    def chat_specs(self, provider: Provider, klass: JournalClass, people: dict[str, JournalPerson]) -> list[dict]:
        """What the chats of a class should be now; only linked people are members."""
        def person(ext: str) -> JournalPerson:
            if ext not in people:
                people[ext] = self.find(JournalPerson, JournalPerson.create_id(provider.id, ext)) or JournalPerson(
                    provider_id=provider.id, external_id=ext)
            return people[ext]

        def linked(externals: list[str]) -> list[str]:
            return [str(p.user_id) for p in map(person, externals) if p.user_id and not p.deleted]

        if klass.deleted:
            return []
        class_id = class_id_of(provider.id, klass.external_id)
        base = {"organization_id": str(provider.organization_of(klass.org) or "") or None,
                "class_id": str(class_id)}
        students = linked(klass.students)
        specs = []
        teacher = klass.class_teacher()
        teacher_user = linked([teacher]) if teacher else []
        if teacher_user:
            parents = sorted({r for s in klass.students for r in person(s).relatives
                              if person(r).role in PARENT_ROLES})
            colleagues = [t for t in klass.all_teachers() if t != teacher]
            for kind, label, members in (("class_students", "ученики", students),
                                         ("class_parents", "родители", linked(parents)),
                                         ("class_colleagues", "учителя", linked(colleagues))):
                specs.append({**base, "key": f"ej:{provider.id}:{klass.external_id}:{kind}:{teacher}", "kind": kind,
                              "subject": None, "teacher_id": teacher_user[0], "name": f"{klass.title} — {label}",
                              "member_ids": teacher_user + [m for m in members if m != teacher_user[0]]})
        # EJ-4: a subject chat exists from the timetable on; linked pupils are in it at once and its
        # teacher enters when they link (nobody waits for anybody).
        for subject, subject_teacher in klass.subject_teachers():
            owner = linked([subject_teacher])
            specs.append({**base, "key": subject_chat_key(provider.id, klass.external_id, subject, subject_teacher),
                          "kind": "subject", "subject": subject, "teacher_id": owner[0] if owner else None,
                          "name": f"{klass.title} · {subject}",
                          "member_ids": owner + [m for m in students if m not in owner]})
        return specs

    def sync_chats(self, provider_id: uuid.UUID, class_ids: set[str] | list[str],
                   chats: ChatSink | None = None, force: bool = False) -> int:
        """Tell messaging what changed in these classes' chats; returns how many chats were sent."""
        chats = chats or self.chats
        if not class_ids or chats is None:
            return 0
        provider = self.provider(provider_id)
        people: dict[str, JournalPerson] = {}
        sent = 0
        for external_id in sorted(class_ids):
            klass = self.find(JournalClass, JournalClass.create_id(provider_id, external_id))
            if klass is None:
                continue
            specs = self.chat_specs(provider, klass, people)
            wanted = {s["key"]: s for s in specs}
            # Chats that no longer have an owner here are emptied, not deleted: their history stays.
            for key in set(klass.chats) - set(wanted):
                if klass.chats[key] != "retired":
                    wanted[key] = {"key": key, "retire": True}
            digests = {k: ("retired" if s.get("retire") else digest(s)) for k, s in wanted.items()}
            changed = [wanted[k] for k, d in digests.items() if force or klass.chats.get(k) != d]
            if not changed:
                continue
            chats(changed)
            sent += len(changed)

            self._record_sent(provider_id, klass.id, {c["key"]: digests[c["key"]] for c in changed})
        return sent

    def _record_sent(self, provider_id: uuid.UUID, klass_id: uuid.UUID, digests: dict[str, str]) -> None:
        def command() -> None:
            fresh = self.find(JournalClass, klass_id)
            fresh.chats_sent(digests)
            self.save(fresh)

        self.retrying(command, ("provider", provider_id))

    def resync(self, provider_id: uuid.UUID, chats: ChatSink | None = None, force: bool = False) -> int:
        """Every class of a provider (an operator's repair tool; after binding a school), and every
        linked person's organizations."""
        classes = {c.external_id for c in self._all(JournalClass) if c.provider_id == provider_id}
        self.announce_memberships(provider_id, [link.external_person_id for link in self._all(AccountLink, "Linked")
                                                if link.provider_id == provider_id and link.active])
        return self.sync_chats(provider_id, classes, chats, force)

    # -- the organizations linked people belong to (EJ-2) --------------------------------------------------
    def announce_memberships(self, provider_id: uuid.UUID, external_ids: list[str]) -> int:
        """Tell school, for each of these people who is linked, the platform organizations their journal
        schools are bound to and their role there (when that changed); returns how many were told."""
        told = 0
        for external_id in sorted(set(external_ids)):
            def command(external_id: str = external_id) -> int:
                person = self.find(JournalPerson, JournalPerson.create_id(provider_id, external_id))
                role = SCHOOL_ROLES.get(person.role or "") if person is not None else None
                if person is None or person.user_id is None or role is None:
                    return 0  # most of a roster has not linked: nothing to tell, nothing more to read
                provider = self.provider(provider_id)
                orgs = [] if person.deleted else sorted(
                    {str(o) for o in map(provider.organization_of, person.orgs) if o is not None})
                announced = person.memberships_announced()
                wanted = {"user_id": str(person.user_id), "role": role, "organization_ids": orgs}
                if announced == wanted or (announced is None and not orgs):
                    return 0
                person.announce_memberships(person.user_id, role, orgs)
                self.save(person)
                return 1

            told += self.retrying(command, ("provider", provider_id))
        return told

    def request_replay(self, provider_id: uuid.UUID) -> uuid.UUID:
        """An operator asks for the inbox to be replayed; it runs from the bridge's own event."""
        replay_id = uuid.uuid4()

        def command() -> None:
            provider = self.provider(provider_id)
            provider.request_replay(replay_id)
            self.save(provider)

        self.retrying(command, ("provider", provider_id))
        return replay_id

    def replay_inbox(self, provider_id: uuid.UUID, chats: ChatSink | None = None,
                     replay_id: uuid.UUID | None = None) -> dict:
        """Process every stored delivery of a provider again, in order, then tell
        messaging every chat again: the same chats come out, not copies (an
        operator's tool after a fix; the test of idempotence end to end)."""
        self.provider(provider_id)
        deliveries = [n.originator_id for n in self.process_recorder.select_notifications(start=1, limit=10**9)
                      if n.topic.endswith("Delivery.Received")]
        replay = uuid.uuid4()
        count = 0
        for delivery_id in deliveries:
            delivery = self.find(Delivery, delivery_id)
            if delivery is not None and delivery.provider_id == provider_id:
                self.process_delivery(delivery_id, f"replay:{replay}:{delivery_id}", chats)
                count += 1
        result = {"deliveries": count, "chats_sent": self.resync(provider_id, chats, force=True)}
        if replay_id is not None:
            def command() -> None:
                provider = self.provider(provider_id)
                provider.finish_replay(replay_id, count, result["chats_sent"])
                self.save(provider)

            self.retrying(command, ("provider", provider_id))
        return result

    def _all(self, cls: type, created: str = "Opened") -> list:
        seen: dict[uuid.UUID, Any] = {}
        for notification in self.process_recorder.select_notifications(start=1, limit=10**9):
            if notification.originator_id not in seen and notification.topic.endswith(f"{cls.__qualname__}.{created}"):
                seen[notification.originator_id] = self.find(cls, notification.originator_id)
        return [a for a in seen.values() if a is not None]

    # -- account linking: OAuth 2 authorization code with PKCE (EJ-1, EJ-2) -----------------------------------
    def start_link(self, user_id: uuid.UUID, provider_id: uuid.UUID, redirect_uri: str,
                   login_hint: str | None = None) -> tuple[LinkAttempt, str]:
        """The e-journal's sign-in page to send the person to (from the platform or the journal's side)."""
        provider = self.provider(provider_id)
        verifier = secrets.token_urlsafe(48)
        attempt = LinkAttempt(user_id=user_id, provider_id=provider_id, code_verifier=verifier,
                              expires_at=utcnow() + LINK_ATTEMPT_TTL)
        self.save(attempt)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        query = {"response_type": "code", "client_id": provider.client_id, "redirect_uri": redirect_uri,
                 "state": link_token("ejournal-link", attempt.id), "code_challenge": challenge,
                 "code_challenge_method": "S256", "scope": "profile"}
        if login_hint:
            query["login_hint"] = login_hint
        return attempt, f"{provider.base_url}/oauth/authorize?{urlencode(query)}"

    def finish_link(self, state: str, code: str, redirect_uri: str) -> AccountLink:
        """The journal sent the person back with a code: exchange it, learn who they are there, link."""
        attempt_id = link_id_from_token("ejournal-link", state or "")
        attempt = self.find(LinkAttempt, attempt_id) if attempt_id else None
        if attempt is None:
            raise NotFound("link.not_found", "This sign-in is not one of ours; start again.")
        attempt.check_open(utcnow())
        provider = self.provider(attempt.provider_id)
        token = self.journal.exchange_code(provider, code, redirect_uri, attempt.code_verifier,
                                           self.open_client_secret(provider))
        me = self.journal.me(provider, token)
        external_id, role = me["sourcedId"], me["role"]

        def command() -> AccountLink:
            fresh = self.find(LinkAttempt, attempt.id)
            fresh.check_open(utcnow())
            pending: dict = {fresh.id: fresh}
            fresh.finish(external_id)
            now = utcnow()
            link = self.find(AccountLink, AccountLink.create_id(attempt.user_id, provider.id))
            if link is not None and link.active and link.external_person_id != external_id:
                # This account was someone else there before: that person is no longer linked to it.
                self._person(pending, provider.id, link.external_person_id).link(None)
                link.unlink(now)
            person = self._person(pending, provider.id, external_id)
            if person.user_id and person.user_id != attempt.user_id:
                # That journal person was linked to another account: one person, one account.
                other = self.find(AccountLink, AccountLink.create_id(person.user_id, provider.id))
                if other is not None and other.active:
                    other.unlink(now)
                    pending[other.id] = other
            if person.user_id != attempt.user_id:
                person.link(attempt.user_id)
            if link is None:
                link = AccountLink(user_id=attempt.user_id, provider_id=provider.id, region=provider.region,
                                   external_person_id=external_id, role=role, linked_at=now)
            else:
                link.relink(external_id, role, now)
            pending[link.id] = link
            self.save(*pending.values())
            return link

        return self.retrying(command, ("provider", provider.id))

    def links_of(self, user_id: uuid.UUID) -> list[AccountLink]:
        found = [self.find(AccountLink, AccountLink.create_id(user_id, p.id)) for p in self.providers()]
        return [link for link in found if link is not None and link.active]

    def unlink(self, user_id: uuid.UUID, provider_id: uuid.UUID) -> None:
        def command() -> None:
            link = self.find(AccountLink, AccountLink.create_id(user_id, provider_id))
            if link is None or not link.active:
                raise NotFound("link.not_found", "This account is not linked to that e-journal.")
            link.unlink(utcnow())
            person = self.find(JournalPerson, JournalPerson.create_id(provider_id, link.external_person_id))
            changed: list[Any] = [link]
            if person is not None and person.user_id == user_id:
                person.link(None)
                changed.append(person)
            self.save(*changed)

        self.retrying(command, ("provider", provider_id))

    def on_link_changed(self, provider_id: uuid.UUID, external_person_id: str, chats: ChatSink | None = None) -> int:
        """After a link or unlink: the chats of the person's classes (EJ-3: the class
        teacher's three appear at once; students and parents land in theirs, EJ-4)."""
        pending: dict = {}
        person = self._person(pending, provider_id, external_person_id)
        sent = self.sync_chats(provider_id, self._classes_of(person, pending), chats)
        self.announce_memberships(provider_id, [external_person_id])
        return sent

    # -- the timetable of a person (EJ-5, SC-13) ---------------------------------------------------------
    def lessons_of(self, user_id: uuid.UUID, start: datetime | None = None, end: datetime | None = None
                   ) -> list[dict]:
        """The lessons a person has between ``start`` and ``end`` (default: today and the six days after),
        from the mirror of every journal they linked: a pupil's class lessons, a parent's children's, the
        lessons a teacher teaches. A lesson id here is the one ``/lessons/{id}/call`` takes."""
        start = start or utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
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


def digest(spec: dict) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:32]
