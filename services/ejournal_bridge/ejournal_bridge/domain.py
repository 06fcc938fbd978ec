"""The e-journal bridge's aggregates (docs/rules.md EJ-*).

- ``Provider``: a region's e-journal: base URL, OAuth client, webhook secrets
  (rotated with a grace period), its schools bound to platform organizations.
  Its secrets are held sealed (shared/secretbox.py): the aggregate, its events
  and snapshots never carry them in clear; they are opened only to be used.
- ``Delivery``: one webhook in the bridge's inbox, keyed by (provider, event
  id): a repeated event id finds it and changes nothing.
- ``JournalClass`` / ``JournalPerson`` / ``Lesson``: the bridge's mirror of a
  journal's roster and timetable, built from deliveries; ids derived from the
  journal's ``sourcedId`` so replaying the inbox lands on the same aggregates.
- ``Dated``: what those mirror entities share: the time (``occurred_at``) of the
  last journal record applied to each, so an older record delivered late
  changes nothing (the journal retries, the consumer retries: order is lost).
- ``Backlog``: a provider's journal records that came before what they need
  (a lesson's start before its publish or before the lesson itself).
- ``LinkAttempt`` / ``AccountLink``: the OAuth 2 sign-in that links a platform
  account to a journal person (EJ-1, EJ-2).
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from eventsourcing.domain import Aggregate, event

from shared.compare import same_secret
from shared.errors import Conflict, Gone, Invalid, Unauthorized

NAMESPACE = uuid.UUID("5d0c9a71-3b8e-4f0e-9a55-2c7d1e8b4f60")
REPLAY_WINDOW = timedelta(seconds=300)
# How long a record waits in the backlog for what it needs (by the journal's times): past it, what it waited for
# is not coming (a start for a lesson never published), and keeping it would only grow the provider's backlog.
BACKLOG_TTL = timedelta(days=7)
LINK_ATTEMPT_TTL = timedelta(minutes=10)
PARENT_ROLES = ("parent", "guardian")
# The platform role a journal role gives in the bound organization (EJ-2); administrators are given none.
SCHOOL_ROLES = {"student": "student", "teacher": "teacher", "parent": "parent", "guardian": "parent"}


def derived_id(kind: str, *parts: object) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, ":".join([kind, *map(str, parts)]))


def class_id_of(provider_id: uuid.UUID, external_class_id: str) -> uuid.UUID:
    """The platform's id of a journal class (messaging's chats and calls key on it, CA-8)."""
    return derived_id("class", provider_id, external_class_id)


def lesson_id_of(provider_id: uuid.UUID, external_lesson_id: str) -> uuid.UUID:
    return derived_id("lesson", provider_id, external_lesson_id)


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"v1={mac}"


class Provider(Aggregate):
    @event("Registered")
    def __init__(self, region: str, name: str, base_url: str, client_id: str, client_secret: str,
                 webhook_secret: str, registered_at: datetime):
        self.region = region
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.client_id = client_id
        self.client_secret = client_secret  # sealed
        # Secrets that verify webhooks (sealed): the current one (no end) and rotated ones until their grace ends.
        self.secrets: list[dict] = [{"secret": webhook_secret, "valid_until": None}]
        self.schools: dict[str, str] = {}  # journal org sourcedId -> platform organization id
        self.orgs: dict[str, str] = {}  # journal org sourcedId -> name, as the journal sent them
        self.last_replay: dict | None = None  # the inbox's last replay, asked by an operator

    @event("ReplayRequested")
    def request_replay(self, replay_id: uuid.UUID) -> None:
        self.last_replay = {"replay_id": str(replay_id), "state": "running", "deliveries": 0, "chats_sent": 0}

    @event("ReplayFinished")
    def finish_replay(self, replay_id: uuid.UUID, deliveries: int, chats_sent: int) -> None:
        self.last_replay = {"replay_id": str(replay_id), "state": "finished", "deliveries": deliveries,
                            "chats_sent": chats_sent}

    def see_org(self, external_org_id: str, name: str) -> None:
        if self.orgs.get(external_org_id) != name:
            self._org_seen(external_org_id, name)

    @event("OrgSeen")
    def _org_seen(self, external_org_id: str, name: str) -> None:
        self.orgs[external_org_id] = name

    def valid_secrets(self, now: datetime) -> list[str]:
        return [s["secret"] for s in self.secrets
                if s["valid_until"] is None or datetime.fromisoformat(s["valid_until"]) > now]

    def verify(self, timestamp: str, signature_header: str, body: bytes, now: datetime,
               open_secret: Callable[[str], str]) -> None:
        """HMAC-SHA256 over timestamp and body with any valid secret (opened with
        ``open_secret``), compared in constant time; outside the replay window it is
        refused whatever it says."""
        try:
            sent_at = datetime.fromtimestamp(int(timestamp), tz=now.tzinfo)
        except (TypeError, ValueError, OverflowError, OSError):  # OSError: a year the platform's C time refuses
            raise Unauthorized("webhook.bad_timestamp", "X-Sfera-Timestamp must be Unix seconds.") from None
        if abs(now - sent_at) > REPLAY_WINDOW:
            raise Unauthorized("webhook.stale", "This delivery is outside the replay window.",
                               {"window_seconds": int(REPLAY_WINDOW.total_seconds())})
        offered = (signature_header or "").strip()
        matched = False
        for secret in self.valid_secrets(now):
            # Every secret is compared, so timing does not tell which one matched.
            matched |= same_secret(signature(open_secret(secret), timestamp, body), offered)
        if not matched:
            raise Unauthorized("webhook.bad_signature", "The signature does not match.")

    def rotate_secret(self, new_secret: str, now: datetime, grace: timedelta) -> None:
        """``new_secret`` sealed."""
        self._rotated(new_secret, (now + grace).isoformat())

    def reseal(self, reseal: Callable[[str], str]) -> bool:
        """Seal every secret again with the newest key (``reseal``); whether anything changed."""
        client_secret = reseal(self.client_secret)
        webhook_secrets = [{**s, "secret": reseal(s["secret"])} for s in self.secrets]
        if client_secret == self.client_secret and webhook_secrets == self.secrets:
            return False
        self._resealed(client_secret, webhook_secrets)
        return True

    @event("SecretsResealed")
    def _resealed(self, client_secret: str, webhook_secrets: list[dict]) -> None:
        self.client_secret = client_secret
        self.secrets = webhook_secrets

    @event("SecretRotated")
    def _rotated(self, new_secret: str, old_valid_until: str) -> None:
        # The secret in use keeps working until the grace ends; older ones keep their own end.
        for s in self.secrets:
            if s["valid_until"] is None or s["valid_until"] > old_valid_until:
                s["valid_until"] = old_valid_until
        self.secrets = [*self.secrets[-4:], {"secret": new_secret, "valid_until": None}]

    @event("SchoolBound")
    def bind_school(self, external_org_id: str, organization_id: uuid.UUID) -> None:
        self.schools[external_org_id] = str(organization_id)

    def organization_of(self, external_org_id: str | None) -> uuid.UUID | None:
        found = self.schools.get(external_org_id or "")
        return uuid.UUID(found) if found else None


class Delivery(Aggregate):
    """A webhook in the inbox, stored before it is acknowledged and processed."""

    @staticmethod
    def create_id(provider_id: uuid.UUID, event_id: str, **_: object) -> uuid.UUID:
        return derived_id("delivery", provider_id, event_id)

    @event("Received")
    def __init__(self, provider_id: uuid.UUID, event_id: str, type: str, body: dict, received_at: datetime):
        self.provider_id = provider_id
        self.event_id = event_id
        self.type = type
        self.body = body
        self.received_at = received_at


class Dated(Aggregate):
    """A mirror entity (class, person, enrollment, lesson) and ``as_of``: the journal's ``occurred_at`` of the last
    record applied to it, deletions included (its tombstone). The journal's deliveries reach the bridge out of
    their order (its retries, the consumer's retry of a failed delivery overtaken by the next), and a record is
    the whole entity as of its time: one older than what was applied is stale, and applying it would undo a newer
    one (an old ``users.upserted`` would bring a deleted pupil back into the class chats). An entity stored before
    ``as_of`` was kept has none (its events replay as they were): no record is stale to it."""

    def stale(self, occurred_at: datetime) -> bool:
        as_of = getattr(self, "as_of", None)
        return as_of is not None and occurred_at < as_of  # the same time is not older: a repeat applies as before

    def date(self, occurred_at: datetime) -> None:
        """A record of that time was applied (whether it changed anything or not: a later, older one is stale)."""
        if getattr(self, "as_of", None) != occurred_at and not self.stale(occurred_at):
            self._dated(occurred_at)

    @event("Dated")
    def _dated(self, as_of: datetime) -> None:
        self.as_of = as_of


class JournalClass(Dated):
    @staticmethod
    def create_id(provider_id: uuid.UUID, external_id: str, **_: object) -> uuid.UUID:
        return class_id_of(provider_id, external_id)

    @event("Opened")
    def __init__(self, provider_id: uuid.UUID, external_id: str):
        self.provider_id = provider_id
        self.external_id = external_id
        self.title = external_id
        self.org: str | None = None
        self.deleted = False
        self.students: list[str] = []
        self.teachers: dict[str, bool] = {}  # enrolled teacher -> is the class teacher (primary)
        self.lessons: dict[str, list[str]] = {}  # lesson sourcedId -> [subject, teacher]
        self.chats: dict[str, str] = {}  # chat key -> digest of what messaging was last told

    @event("Upserted")
    def upsert(self, title: str, org: str, deleted: bool = False) -> None:
        self.title, self.org, self.deleted = title, org, deleted

    @event("Enrolled")
    def enroll(self, user: str, role: str, primary: bool, present: bool) -> None:
        if role == "student":
            self.students = [s for s in self.students if s != user] + ([user] if present else [])
        elif present:
            self.teachers[user] = primary
        else:
            self.teachers.pop(user, None)

    @event("LessonSet")
    def set_lesson(self, lesson: str, subject: str | None, teacher: str | None) -> None:
        if subject is None:
            self.lessons.pop(lesson, None)
        else:
            self.lessons[lesson] = [subject, teacher]

    def class_teacher(self) -> str | None:
        return next((t for t, primary in sorted(self.teachers.items()) if primary), None)

    def all_teachers(self) -> list[str]:
        return sorted(set(self.teachers) | {t for _, t in self.lessons.values()})

    def subject_teachers(self) -> list[tuple[str, str]]:
        """Each (subject, teacher) of the timetable: one subject chat each (EJ-4)."""
        return sorted({(s, t) for s, t in self.lessons.values()})

    @event("ChatsSent")
    def chats_sent(self, digests: dict[str, str]) -> None:
        self.chats = {**self.chats, **digests}


class JournalPerson(Dated):
    @staticmethod
    def create_id(provider_id: uuid.UUID, external_id: str, **_: object) -> uuid.UUID:
        return derived_id("person", provider_id, external_id)

    @event("Opened")
    def __init__(self, provider_id: uuid.UUID, external_id: str):
        self.provider_id = provider_id
        self.external_id = external_id
        self.role: str | None = None
        self.given_name = ""
        self.family_name = ""
        self.orgs: list[str] = []
        self.relatives: list[str] = []  # parents of a student, children of a parent (OneRoster agents)
        self.classes: list[str] = []  # enrolled in (students) or teaching (teachers)
        self.user_id: uuid.UUID | None = None  # the platform account linked (EJ-1)
        self.deleted = False

    @event("Upserted")
    def upsert(self, role: str, given_name: str, family_name: str, orgs: list[str], deleted: bool = False) -> None:
        self.role, self.given_name, self.family_name, self.orgs, self.deleted = (
            role, given_name, family_name, orgs, deleted)

    @event("Related")
    def relate(self, relatives: list[str]) -> None:
        self.relatives = sorted(set(relatives))

    @event("ClassSet")
    def set_class(self, class_id: str, present: bool) -> None:
        self.classes = sorted({*self.classes, class_id} if present else set(self.classes) - {class_id})

    @event("Linked")
    def link(self, user_id: uuid.UUID | None) -> None:
        self.user_id = user_id

    def memberships_announced(self) -> dict | None:
        return getattr(self, "announced", None)  # older snapshots have none

    def announce_memberships(self, user_id: uuid.UUID, role: str, organization_ids: list[str]) -> None:
        """EJ-2: the organizations this linked person belongs to by the journal, as school is told."""
        self._memberships_announced(self.provider_id, self.external_id, user_id, role, organization_ids)

    @event("MembershipsAnnounced")
    def _memberships_announced(self, provider_id: uuid.UUID, external_id: str, user_id: uuid.UUID, role: str,
                               organization_ids: list[str]) -> None:
        self.announced = {"user_id": str(user_id), "role": role, "organization_ids": organization_ids}


class Lesson(Dated):
    """A timetable slot: scheduled, rescheduled, cancelled; a remote one published, started, ended.

    Every event carries ``facts``: what other services need to know of the lesson
    then (platform ids of its class, organization and teacher, its times), so the
    integration events are a mapping of these alone."""

    @staticmethod
    def create_id(provider_id: uuid.UUID, external_id: str, **_: object) -> uuid.UUID:
        return lesson_id_of(provider_id, external_id)

    @event("Scheduled")
    def __init__(self, provider_id: uuid.UUID, external_id: str, external_class_id: str, subject: str,
                 external_teacher_id: str, starts_at: datetime, ends_at: datetime, remote: bool, facts: dict):
        self.provider_id = provider_id
        self.external_id = external_id
        self.external_class_id = external_class_id
        self.subject = subject
        self.external_teacher_id = external_teacher_id
        self.starts_at = starts_at
        self.ends_at = ends_at
        self.remote = remote
        self.cancelled = False
        self.published = False
        self.state = "scheduled"  # -> started -> ended

    def same(self, subject: str, teacher: str, starts_at: datetime, ends_at: datetime, remote: bool) -> bool:
        return (self.subject, self.external_teacher_id, self.starts_at, self.ends_at, self.remote) == (
            subject, teacher, starts_at, ends_at, remote) and not self.cancelled

    @event("Rescheduled")
    def reschedule(self, subject: str, external_teacher_id: str, starts_at: datetime, ends_at: datetime,
                   remote: bool, facts: dict) -> None:
        self.subject, self.external_teacher_id = subject, external_teacher_id
        self.starts_at, self.ends_at, self.remote = starts_at, ends_at, remote
        self.cancelled = False

    @event("Cancelled")
    def cancel(self, facts: dict) -> None:
        self.cancelled = True

    def publish(self, facts: dict) -> None:
        """EJ-4: the teacher publishes a remote lesson."""
        if self.cancelled:
            raise Gone("lesson.cancelled", "This lesson was cancelled.")
        if not self.remote:
            raise Invalid("lesson.not_remote", "Only a remote lesson is published.")
        if not self.published:
            self._published(facts)

    @event("Published")
    def _published(self, facts: dict) -> None:
        self.published = True

    def awaits(self, action: str) -> bool:
        """Whether the journal's ``action`` (published, started, ended) must wait for a record not applied yet:
        a start before the lesson's publish, a publish before the record making the lesson remote. The journal
        produced them in order; they arrived out of it, and refusing the first would lose it for good (its
        redelivery is a duplicate). An ended lesson waits for nothing: a start after its end starts nothing."""
        if action == "started":
            return self.state == "scheduled" and not self.published
        if action == "published":
            return not self.remote and not self.cancelled
        return False

    def start(self, by: str | None, facts: dict) -> None:
        if not self.published:
            raise Conflict("lesson.not_published", "Publish the remote lesson first.")
        if self.state == "scheduled":  # an ended lesson is not started again (its end may have come first)
            self._started(by, facts)

    @event("Started")
    def _started(self, by: str | None, facts: dict) -> None:
        self.state = "started"

    def end(self, by: str | None, facts: dict) -> None:
        """CA-7: ended from the journal, started or not: an end that overtook its start is kept, so the start
        arriving after it starts nothing (no call left open holding the subject's slot, CA-8); and calls ends
        a call started from the platform rather than the journal. Its version, later than any start's, is what
        calls compares a late start with (``LessonInfo.ended_after``)."""
        if self.state != "ended":
            self._ended(by, facts)

    @event("Ended")
    def _ended(self, by: str | None, facts: dict) -> None:
        self.state = "ended"


class LinkAttempt(Aggregate):
    """An OAuth 2 authorization-code sign-in under way: ``state`` names it, PKCE guards the code."""

    @event("Started")
    def __init__(self, user_id: uuid.UUID, provider_id: uuid.UUID, code_verifier: str, expires_at: datetime):
        self.user_id = user_id
        self.provider_id = provider_id
        self.code_verifier = code_verifier
        self.expires_at = expires_at
        self.finished = False

    def check_open(self, now: datetime) -> None:
        if self.finished:
            raise Gone("link.already_used", "This sign-in was already used; start again.")
        if now > self.expires_at:
            raise Gone("link.expired", "This sign-in took too long; start again.")

    @event("Finished")
    def finish(self, external_person_id: str) -> None:
        self.finished = True


class AccountLink(Aggregate):
    """One platform account's link to one provider: the journal person it is (EJ-1)."""

    @staticmethod
    def create_id(user_id: uuid.UUID, provider_id: uuid.UUID, **_: object) -> uuid.UUID:
        return derived_id("link", user_id, provider_id)

    @event("Linked")
    def __init__(self, user_id: uuid.UUID, provider_id: uuid.UUID, region: str, external_person_id: str, role: str,
                 linked_at: datetime):
        self.user_id = user_id
        self.provider_id = provider_id
        self.region = region
        self.external_person_id = external_person_id
        self.role = role
        self.linked_at = linked_at
        self.active = True

    def relink(self, external_person_id: str, role: str, linked_at: datetime) -> None:
        self._relinked(self.user_id, self.provider_id, self.region, external_person_id, role, linked_at)

    @event("Relinked")
    def _relinked(self, user_id: uuid.UUID, provider_id: uuid.UUID, region: str, external_person_id: str, role: str,
                  linked_at: datetime) -> None:
        self.external_person_id, self.role, self.linked_at, self.active = external_person_id, role, linked_at, True

    def unlink(self, unlinked_at: datetime) -> None:
        self._unlinked(self.user_id, self.provider_id, self.external_person_id, unlinked_at)

    @event("Unlinked")
    def _unlinked(self, user_id: uuid.UUID, provider_id: uuid.UUID, external_person_id: str,
                  unlinked_at: datetime) -> None:
        self.active = False


class Directory(Aggregate):
    """The registered providers (one per region's e-journal)."""

    @staticmethod
    def create_id(**_: object) -> uuid.UUID:
        return derived_id("directory")

    @event("Opened")
    def __init__(self):
        self.providers: dict[str, dict] = {}  # provider id -> {region, name}

    @event("ProviderAdded")
    def add(self, provider_id: uuid.UUID, region: str, name: str) -> None:
        self.providers[str(provider_id)] = {"region": region, "name": name}


class Enrollment(Dated):
    """A OneRoster enrollment, so a deletion naming only its sourcedId finds its class and person."""

    @staticmethod
    def create_id(provider_id: uuid.UUID, external_id: str, **_: object) -> uuid.UUID:
        return derived_id("enrollment", provider_id, external_id)

    @event("Recorded")
    def __init__(self, provider_id: uuid.UUID, external_id: str, class_id: str, user: str, role: str,
                 primary: bool, active: bool = True):
        """``active`` False: a deletion that came before the enrollment's record (a tombstone, its class and
        person not known yet: an older record coming after it is stale, ``Dated``)."""
        self.class_id, self.user, self.role, self.primary = class_id, user, role, primary
        self.active = active

    @event("Changed")
    def change(self, class_id: str, user: str, role: str, primary: bool, active: bool) -> None:
        self.class_id, self.user, self.role, self.primary, self.active = class_id, user, role, primary, active


class LinkedPeople(Aggregate):
    """A provider's index of its linked journal people (issue #17): what the chats' process manager needs of
    each -- account, role, relatives, deleted -- copied from ``JournalPerson`` in the same save that changes
    the person or the link, so a class's chats are worked out from this one aggregate and the class, not by
    reading every pupil and parent of the class (most of whom never link)."""

    @staticmethod
    def create_id(provider_id: uuid.UUID, **_: object) -> uuid.UUID:
        return derived_id("linked-people", provider_id)

    @event("Opened")
    def __init__(self, provider_id: uuid.UUID, people: dict[str, dict]):
        self.provider_id = provider_id
        self.people: dict[str, dict] = people  # external id -> {user_id, role, relatives, deleted}

    @staticmethod
    def entry_of(person: JournalPerson) -> dict | None:
        if person.user_id is None:
            return None
        return {"user_id": str(person.user_id), "role": person.role, "relatives": list(person.relatives),
                "deleted": person.deleted}

    def note(self, person: JournalPerson) -> None:
        """The person as they are now (not linked: out of the index)."""
        entry = self.entry_of(person)
        if self.people.get(person.external_id) != entry:
            self._noted(person.external_id, entry)

    @event("Noted")
    def _noted(self, external_id: str, entry: dict | None) -> None:
        if entry is None:
            self.people.pop(external_id, None)
        else:
            self.people[external_id] = entry

    def linked(self, external_ids: list[str]) -> list[str]:
        """The accounts of those of ``external_ids`` who are linked (and not deleted), in that order."""
        found = (self.people.get(e) for e in external_ids)
        return [e["user_id"] for e in found if e is not None and not e["deleted"]]

    def linked_parents_of(self, students: list[str]) -> list[str]:
        """The linked parents of these students (relatives are kept both ways), by external id."""
        pupils = set(students)
        return sorted(ext for ext, e in self.people.items()
                      if e["role"] in PARENT_ROLES and not pupils.isdisjoint(e["relatives"]))


class SchoolResync(Aggregate):
    """A school's binding and the resync it starts (issue #17): the bind is recorded with a request, the resync
    runs from the request's own event (through the outbox) in steps, each step's progress recorded here, so a
    crash resumes after the last step recorded and the operator sees how far it got. A later bind of the school
    asks for a new resync: the one running stops at its next step."""

    STATES = ("pending", "running", "done", "failed")

    @staticmethod
    def create_id(provider_id: uuid.UUID, external_org_id: str, **_: object) -> uuid.UUID:
        return derived_id("resync", provider_id, external_org_id)

    @event("Opened")
    def __init__(self, provider_id: uuid.UUID, external_org_id: str):
        self.provider_id = provider_id
        self.external_org_id = external_org_id
        self.resync_id: uuid.UUID | None = None
        self.organization_id: uuid.UUID | None = None
        self.state: str | None = None
        self.requested_at: datetime | None = None
        self.finished_at: datetime | None = None
        self.error: str | None = None
        self._reset(0, 0)

    def _reset(self, people_total: int, classes_total: int) -> None:
        self.people_total, self.people_done, self.people_cursor = people_total, 0, None
        self.classes_total, self.classes_done, self.classes_cursor = classes_total, 0, None
        self.chats_sent = 0

    def request(self, resync_id: uuid.UUID, organization_id: uuid.UUID, requested_at: datetime) -> None:
        self._requested(self.provider_id, self.external_org_id, resync_id, organization_id, requested_at)

    @event("Requested")
    def _requested(self, provider_id: uuid.UUID, external_org_id: str, resync_id: uuid.UUID,
                   organization_id: uuid.UUID, requested_at: datetime) -> None:
        self.resync_id, self.organization_id, self.requested_at = resync_id, organization_id, requested_at
        self.state, self.finished_at, self.error = "pending", None, None
        self._reset(0, 0)

    @event("Started")
    def start(self, people_total: int, classes_total: int) -> None:
        """The first run sets the totals; a resumed one (after a crash or a failure) keeps what was done."""
        if self.state == "pending":
            self._reset(people_total, classes_total)
        self.state, self.error = "running", None

    @event("PeopleProgressed")
    def people_progressed(self, cursor: str, done: int) -> None:
        self.people_cursor, self.people_done = cursor, self.people_done + done

    @event("ClassesProgressed")
    def classes_progressed(self, cursor: str, done: int, chats_sent: int) -> None:
        self.classes_cursor, self.classes_done = cursor, self.classes_done + done
        self.chats_sent += chats_sent

    @event("Finished")
    def finish(self, finished_at: datetime) -> None:
        self.state, self.finished_at = "done", finished_at

    @event("Failed")
    def fail(self, error: str, failed_at: datetime) -> None:
        self.state, self.error, self.finished_at = "failed", error, failed_at


class Backlog(Aggregate):
    """A provider's journal records that came before what they need, kept until it arrives (deliveries reach the
    bridge out of the journal's order): a lesson's start before its publish, any record of a lesson not in the
    timetable yet (its start, its end, its deletion). Refused, such a record was lost for good (a redelivery is a
    duplicate); raised as ``NotYet`` it would hold up the rest of its delivery and be dead-lettered after the
    consumer's few retries (about a minute), while what it waits for may come much later (the journal's own
    retries, a dead-lettered delivery replayed), and an operator's replay of the inbox would stop on it. Kept
    here, it is applied in the command that applies what it waited for, whenever that comes, and once (taken out
    in the same save). One aggregate per provider, read once per command of lessons: it is nearly always empty."""

    @staticmethod
    def create_id(provider_id: uuid.UUID, **_: object) -> uuid.UUID:
        return derived_id("backlog", provider_id)

    @event("Opened")
    def __init__(self, provider_id: uuid.UUID):
        self.provider_id = provider_id
        self.waiting: dict[str, list[dict]] = {}  # lesson sourcedId -> [{type, record, occurred_at}]

    def waiting_for(self, external_id: str) -> list[dict]:
        """What waits for this lesson, in the order to apply it: a publish first (a start waits for it), then ends
        and deletions before starts, so a lesson known to have ended is never started."""
        rank = {"lesson.published": 0, "lesson.started": 2}
        return sorted(self.waiting.get(external_id, []), key=lambda e: (rank.get(e["type"], 1), e["occurred_at"]))

    def park(self, external_id: str, type_: str, record: dict, occurred_at: datetime) -> None:
        entry = {"type": type_, "record": record, "occurred_at": occurred_at.isoformat()}
        if entry not in self.waiting.get(external_id, []):  # a delivery replayed parks nothing twice
            self._parked(external_id, entry, (occurred_at - BACKLOG_TTL).isoformat())

    @event("Parked")
    def _parked(self, external_id: str, entry: dict, expired_before: str) -> None:
        """Records that waited ``BACKLOG_TTL`` (by the journal's times) are given up when another is parked."""
        waiting = {ext: [e for e in entries if datetime.fromisoformat(e["occurred_at"]) >=
                         datetime.fromisoformat(expired_before)] for ext, entries in self.waiting.items()}
        waiting[external_id] = [*waiting.get(external_id, []), entry]
        self.waiting = {ext: entries for ext, entries in waiting.items() if entries}

    @event("Taken")
    def take(self, external_id: str, entry: dict) -> None:
        left = [e for e in self.waiting.get(external_id, []) if e != entry]
        if left:
            self.waiting[external_id] = left
        else:
            self.waiting.pop(external_id, None)
