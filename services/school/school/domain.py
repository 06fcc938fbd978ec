"""School's aggregates and rules (docs/rules.md RO-*, SC-*).

- ``Person``: a platform user as school knows them (from identity's events),
  and ``PhoneOwner``: whose a phone is, so an approved application's admin
  phone finds its person (SC-1).
- ``OrganizationApplication`` (заявка) and ``Organization`` (SC-1, SC-2), with
  ``CityDirectory`` for search by country and city.
- ``SchoolClass`` (SC-4) and ``GraduationYear``: the classes ending in a year,
  for the graduation job.
- ``Membership``: one person's roles in one organization (RO-1, RO-6), their
  class and their subjects per class (SC-7); ``Roster``: who is in a class, or
  on the staff (admins, teachers, parents), for the members list.
- ``InviteLink`` (SC-5, SC-6, ID-4) and ``JoinRequest`` (SC-2, SC-3).
- ``Document``, ``Article``, ``Channel`` (SC-10..SC-12).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from eventsourcing.domain import Aggregate, event

from shared.contracts import outdated
from shared.errors import Conflict, Forbidden, Gone, Invalid
from shared.text import hidden_characters

NAMESPACE = uuid.UUID("0b7e7f3c-7a8f-4d5e-9a44-3c1f8d2e6b10")
GRADUATION_MONTH_DAY = (7, 1)  # a class graduates on 1 July of its end year, when the school year is over


def derived_id(kind: str, *parts: object) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, ":".join([kind, *map(str, parts)]))


def city_key(country: str, city: str) -> tuple[str, str]:
    return country.strip().upper(), " ".join(city.split()).casefold()


# -- people -------------------------------------------------------------------


class Person(Aggregate):
    """A platform user as school knows them; its id is the identity user id. Made by whichever of identity's
    UserRegistered and ProfileUpdated comes first (each has its own queue, and one that lags past its retries
    dead-lettered the other's NotYet: the person stayed nameless in the members lists); a person known first from a
    profile edit has no registration yet (``registered_at`` None) until ``register``."""

    @event("Recorded")
    def __init__(self, user_id: uuid.UUID, registered_via: str | None, registered_at: datetime | None,
                 last_name: str | None, first_name: str | None, phone: str | None = None):
        self.user_id = user_id
        self.phone = phone  # internal: operators and applications name people by phone (SC-1)
        self.registered_via = registered_via
        self.registered_at = registered_at
        self.last_name = last_name
        self.first_name = first_name

    @staticmethod
    def create_id(user_id: uuid.UUID, **_: object) -> uuid.UUID:
        return user_id

    @event("Renamed")
    def rename(self, last_name: str | None, first_name: str | None, version: int | None = None) -> None:
        """``version``: identity's account's, as of which this is the name (its events' ``sequence``)."""
        self.last_name = last_name
        self.first_name = first_name
        if version is not None:
            self.name_version = version

    def name_outdated(self, version: int | None) -> bool:
        """Whether a name of that account version is older than (or as old as) the one kept: a retried older
        edit applied last left the old name in the admin's lists. None (from before versions): never."""
        return outdated(version, getattr(self, "name_version", 0))

    @property
    def registered(self) -> bool:
        return self.registered_at is not None

    @event("Registered")
    def register(self, registered_via: str, registered_at: datetime, phone: str | None) -> None:
        """The registration of a person known first from a profile edit. Its name is not taken: the registration
        is the account's first event (identity's version 1), older than any edit, so the name kept is newer."""
        self.registered_via = registered_via
        self.registered_at = registered_at
        self.phone = phone


class PhoneOwner(Aggregate):
    """Whose a phone number is now; and organizations waiting for it as their admin."""

    @staticmethod
    def create_id(phone: str, **_: object) -> uuid.UUID:
        return derived_id("phone", phone)

    @event("Opened")
    def __init__(self, phone: str):
        self.phone = phone
        self.user_id: uuid.UUID | None = None
        self.awaiting_admin: list[str] = []  # organization ids

    @event("Owned")
    def own(self, user_id: uuid.UUID | None) -> None:
        self.user_id = user_id

    @event("AdminAwaited")
    def await_admin(self, organization_id: uuid.UUID) -> None:
        self.awaiting_admin.append(str(organization_id))

    @event("AdminArrived")
    def admin_arrived(self) -> None:
        self.awaiting_admin = []


# -- organizations --------------------------------------------------------------


def _no_region(state: dict) -> None:
    """Version 1 of an organization's and an application's events had no region (SC-2): none."""
    state["region"] = None


class OrganizationApplication(Aggregate):
    """SC-1: an application to register a school or college, naming its admin's phone (and its region, SC-2)."""

    class Submitted(Aggregate.Created):
        name: str
        kind: str
        country: str
        city: str
        admin_phone: str
        submitted_by: uuid.UUID | None
        note: str | None
        region: str | None
        class_version = 2
        upcast_v1_v2 = staticmethod(_no_region)

    @event(Submitted)
    def __init__(self, name: str, kind: str, country: str, city: str, admin_phone: str,
                 submitted_by: uuid.UUID | None, note: str | None, region: str | None):
        self.name, self.kind, self.country, self.city = name, kind, country, city
        self.region = region  # shared.regions: a code of the country's regions, or none
        self.admin_phone = admin_phone
        self.submitted_by = submitted_by
        self.note = note
        self.status = "pending"
        self.organization_id: uuid.UUID | None = None
        self.reason: str | None = None

    def _pending(self) -> None:
        if self.status != "pending":
            raise Conflict("application.decided", f"This application was already {self.status}.")

    def approve(self, operator_id: uuid.UUID | None) -> uuid.UUID:
        self._pending()
        organization_id = uuid.uuid4()
        self._approved(operator_id, organization_id)
        return organization_id

    @event("Approved")
    def _approved(self, operator_id: uuid.UUID | None, organization_id: uuid.UUID) -> None:
        self.status = "approved"
        self.organization_id = organization_id

    def reject(self, operator_id: uuid.UUID | None, reason: str) -> None:
        self._pending()
        self._rejected(operator_id, reason)

    @event("Rejected")
    def _rejected(self, operator_id: uuid.UUID | None, reason: str) -> None:
        self.status = "rejected"
        self.reason = reason


class ApplicationQueue(Aggregate):
    """The operators' list of applications waiting for a decision."""

    @staticmethod
    def create_id(**_: object) -> uuid.UUID:
        return derived_id("applications")

    @event("Opened")
    def __init__(self):
        self.pending: list[str] = []

    @event("Added")
    def add(self, application_id: uuid.UUID) -> None:
        self.pending.append(str(application_id))

    @event("Removed")
    def remove(self, application_id: uuid.UUID) -> None:
        self.pending = [a for a in self.pending if a != str(application_id)]


class Organization(Aggregate):
    class Registered(Aggregate.Created):
        organization_id: uuid.UUID
        name: str
        kind: str
        country: str
        city: str
        approved_by: uuid.UUID | None
        region: str | None
        class_version = 2
        upcast_v1_v2 = staticmethod(_no_region)

    class Updated(Aggregate.Event):
        name: str
        country: str
        city: str
        address: str | None
        website: str | None
        settings: dict[str, bool]
        region: str | None
        class_version = 2
        upcast_v1_v2 = staticmethod(_no_region)

    @event(Registered)
    def __init__(self, organization_id: uuid.UUID, name: str, kind: str, country: str, city: str,
                 approved_by: uuid.UUID | None, region: str | None):
        self.name, self.kind, self.country, self.city = name, kind, country, city
        self.region = region  # shared.regions: a code of the country's regions, or none (SC-2)
        self.address: str | None = None
        self.website: str | None = None
        self.settings: dict[str, bool] = {"student_dialogs_allowed": True}
        self.class_ids: list[str] = []
        self.channel_ids: list[str] = []

    @staticmethod
    def create_id(organization_id: uuid.UUID, **_: object) -> uuid.UUID:
        return organization_id

    @event(Updated)
    def update(self, name: str, country: str, city: str, address: str | None, website: str | None,
               settings: dict[str, bool], region: str | None) -> None:
        self.name, self.country, self.city, self.region = name, country, city, region
        self.address, self.website = address, website
        self.settings = settings

    @event("ClassAdded")
    def add_class(self, class_id: uuid.UUID) -> None:
        self.class_ids.append(str(class_id))

    @event("ChannelAdded")
    def add_channel(self, channel_id: uuid.UUID) -> None:
        self.channel_ids.append(str(channel_id))


class CityDirectory(Aggregate):
    """The organizations of one city, for search (SC-2). No longer written: search pages school.readmodel's
    organizations (issue #17); the class stays so that older stores' events still decode."""

    @staticmethod
    def create_id(country: str, city: str, **_: object) -> uuid.UUID:
        return derived_id("city", *city_key(country, city))

    @event("Opened")
    def __init__(self, country: str, city: str):
        self.country, self.city = city_key(country, city)
        self.organizations: dict[str, str] = {}  # id -> name

    @event("Listed")
    def list_organization(self, organization_id: uuid.UUID, name: str) -> None:
        self.organizations[str(organization_id)] = name

    @event("Unlisted")
    def unlist(self, organization_id: uuid.UUID) -> None:
        self.organizations.pop(str(organization_id), None)


# -- classes ------------------------------------------------------------------------


def validate_class(name: str, start_year: int, end_year: int) -> None:
    problems = {}
    if not name.strip() or len(name) > 32 or hidden_characters(name):
        problems["name"] = "A number or name of 1 to 32 characters, e.g. 5А."
    if not 1990 <= start_year <= 2100:
        problems["start_year"] = "A year between 1990 and 2100."
    if not start_year < end_year <= start_year + 12:
        problems["end_year"] = "After the start year, at most 12 years later."
    if problems:
        raise Invalid("class.invalid", "The class is not valid.", {"fields": problems})


def graduation_day(end_year: int) -> date:
    return date(end_year, *GRADUATION_MONTH_DAY)


class SchoolClass(Aggregate):
    """SC-4: a class or group; graduated from 1 July of its end year."""

    @event("Created")
    def __init__(self, organization_id: uuid.UUID, name: str, start_year: int, end_year: int):
        self.organization_id = organization_id
        self.name = name.strip()
        self.start_year, self.end_year = start_year, end_year
        self.graduated = False

    def graduated_on(self, today: date) -> bool:
        """SC-4: graduation is a fact of the date; the ``Graduated`` event only tells other services."""
        return self.graduated or today >= graduation_day(self.end_year)

    def due(self, today: date) -> bool:
        return not self.graduated and today >= graduation_day(self.end_year)

    def graduate(self, graduated_at: datetime) -> None:
        self._graduated(self.organization_id, graduated_at)

    @event("Graduated")
    def _graduated(self, organization_id: uuid.UUID, graduated_at: datetime) -> None:
        self.graduated = True


class GraduationYear(Aggregate):
    """The classes that end in one year: the graduation job reads a few of these."""

    @staticmethod
    def create_id(year: int, **_: object) -> uuid.UUID:
        return derived_id("graduation", year)

    @event("Opened")
    def __init__(self, year: int):
        self.year = year
        self.class_ids: list[str] = []

    @event("ClassAdded")
    def add(self, class_id: uuid.UUID) -> None:
        self.class_ids.append(str(class_id))


# -- members -------------------------------------------------------------------------

UNPLACED = "unplaced"  # the roster of pupils and parents with no class here yet (from the e-journal, EJ-2)


def taught_classes(roles: list[str], class_id: uuid.UUID | None,
                   subjects: dict[str, list[str]]) -> dict[str, list[str]]:
    """SC-7: the classes a teacher teaches, by class id, each with its subjects: those they stated subjects for, and
    the class their invite named (no subject stated yet; a student's or parent's class is where they learn). What
    school's events publish as ``subjects``: messaging's class chats go by it."""
    if "teacher" not in roles:
        return {}
    if class_id is None or {"student", "parent"} & set(roles):
        return dict(subjects)
    return {str(class_id): [], **subjects}


class Membership(Aggregate):
    """One person in one organization: roles (RO-1, RO-6), class, subjects (SC-7)."""

    @staticmethod
    def create_id(organization_id: uuid.UUID, user_id: uuid.UUID, **_: object) -> uuid.UUID:
        return derived_id("membership", organization_id, user_id)

    @event("Joined")
    def __init__(self, organization_id: uuid.UUID, user_id: uuid.UUID, role: str, class_id: uuid.UUID | None,
                 via: str):
        self.organization_id = organization_id
        self.user_id = user_id
        self.roles = [role]
        self.class_id = class_id
        self.parent_of = [str(class_id)] if role == "parent" and class_id is not None else []
        self.subjects: dict[str, list[str]] = {}
        self.active = True

    def has(self, role: str) -> bool:
        return self.active and role in self.roles

    def teaches(self, class_id: uuid.UUID) -> bool:
        """SC-7: a teacher teaches the classes they stated subjects for, and the class
        their invite named (a student's or parent's class is where they learn)."""
        return self.active and str(class_id) in self.taught

    @property
    def taught(self) -> dict[str, list[str]]:
        """The classes this member teaches, each with its subjects (``taught_classes``)."""
        return taught_classes(self.roles, self.class_id, self.subjects)

    @property
    def parent_classes(self) -> list[str]:
        """RO-5, PL-7: the classes a parent is a parent in: each class where a child of theirs studies (siblings in
        two classes: both), or the one an admin admitted them to. ``class_id`` stays one of them for a parent (a
        pupil's own class for a pupil who is a parent too)."""
        return list(self.parent_of) if self.has("parent") else []

    @property
    def groups(self) -> set[str]:
        """The rosters this member is in (``Roster``): staff, the class they study in, the classes they are a parent
        in; a pupil or parent with no class here yet is unplaced (EJ-2). None once they left."""
        if not self.active:
            return set()
        groups = {"staff"} if {"admin", "teacher"} & set(self.roles) else set()
        if "student" in self.roles:
            groups.add(str(self.class_id) if self.class_id is not None else UNPLACED)
        if "parent" in self.roles:
            groups.update(self.parent_of or [UNPLACED])
        return groups

    def _parent_of(self, roles: list[str], class_id: uuid.UUID | None, said: list[str] | None) -> list[str]:
        """The parent's classes after an event that says them (``said``). An event stored before they were kept
        says none: a parent's one class was then their ``class_id`` (whatever else they were)."""
        if "parent" not in roles:
            return []
        if said is not None:
            return list(said)
        return [str(class_id)] if class_id is not None else []

    def _parent_classes_after(self, roles: list[str], class_id: uuid.UUID | None) -> list[str]:
        """A command's parent classes when it does not say them (an admin's change): those kept while ``class_id``
        is one of them, or while they are a pupil too (whose class is their own); else ``class_id``."""
        if "parent" not in roles:
            return []
        kept = self.parent_classes
        if "student" in roles or (class_id is not None and str(class_id) in kept):
            return kept
        return [str(class_id)] if class_id is not None else []

    # Every event below carries the organization, the person and the state after
    # it (roles, class, subjects): the outbox maps each one on its own.

    def rejoin(self, role: str, class_id: uuid.UUID | None, via: str) -> None:
        self._rejoined(self.organization_id, self.user_id, role, [role], class_id, via)

    @event("Rejoined")
    def _rejoined(self, organization_id: uuid.UUID, user_id: uuid.UUID, role: str, roles: list[str],
                  class_id: uuid.UUID | None, via: str) -> None:
        self.active = True
        self.roles = roles
        self.class_id = class_id
        self.parent_of = [str(class_id)] if role == "parent" and class_id is not None else []
        self.subjects = {}

    def add_role(self, role: str, class_id: uuid.UUID | None, via: str = "admin") -> None:
        """A pupil who becomes a parent keeps their own class, their child's a parent class; a parent who becomes a
        pupil studies in the class given (none: unplaced), their children's stay parent classes."""
        roles = self.roles if role in self.roles else [*self.roles, role]
        if role == "student" and "student" not in self.roles:
            new_class = class_id
        elif class_id is not None and role in ("student", "parent") and not (
                role == "parent" and "student" in self.roles):
            new_class = class_id
        else:
            new_class = self.class_id
        parent_of = self.parent_classes
        if role == "parent" and class_id is not None and str(class_id) not in parent_of:
            parent_of = [*parent_of, str(class_id)]
        self._role_added(self.organization_id, self.user_id, role, roles, new_class, self.subjects, via,
                         self._parent_of(roles, new_class, parent_of))

    @event("RoleAdded")
    def _role_added(self, organization_id: uuid.UUID, user_id: uuid.UUID, role: str, roles: list[str],
                    class_id: uuid.UUID | None, subjects: dict[str, list[str]], via: str,
                    parent_classes: list[str] | None = None) -> None:
        self.parent_of = self._parent_of(roles, class_id, parent_classes)
        self.roles = roles
        self.class_id = class_id

    def change(self, roles: list[str], class_id: uuid.UUID | None, changed_by: uuid.UUID,
               parent_classes: list[str] | None = None) -> None:
        """``parent_classes``: a parent's classes (``parent_classes``); not said: ``_parent_classes_after``."""
        subjects = self.subjects if "teacher" in roles else {}
        said = parent_classes if parent_classes is not None else self._parent_classes_after(roles, class_id)
        self._changed(self.organization_id, self.user_id, roles, class_id, subjects, changed_by,
                      self._parent_of(roles, class_id, said))

    @event("Changed")
    def _changed(self, organization_id: uuid.UUID, user_id: uuid.UUID, roles: list[str],
                 class_id: uuid.UUID | None, subjects: dict[str, list[str]], changed_by: uuid.UUID,
                 parent_classes: list[str] | None = None) -> None:
        self.parent_of = self._parent_of(roles, class_id, parent_classes)
        self.roles = roles
        self.class_id = class_id
        self.subjects = subjects

    def assign(self, class_id: uuid.UUID, subjects: list[str]) -> None:
        self._assigned(self.organization_id, self.user_id, class_id, subjects)

    @event("TeacherAssigned")
    def _assigned(self, organization_id: uuid.UUID, user_id: uuid.UUID, class_id: uuid.UUID,
                  subjects: list[str]) -> None:
        self.subjects = {**self.subjects, str(class_id): subjects}

    def leave(self, removed_by: uuid.UUID | None) -> None:
        self._left(self.organization_id, self.user_id, removed_by)

    @event("Left")
    def _left(self, organization_id: uuid.UUID, user_id: uuid.UUID, removed_by: uuid.UUID | None) -> None:
        self.active = False
        self.left_version = self.version + 1  # this event's (the version is set after the body runs)


class AdminChanges(Aggregate):
    """An organization's admin rights taken away (SC-9), one event each. The last-admin rule decides on a count of
    memberships that two commands, each taking away another admin's rights, could both make before either saved,
    touching no record in common; each reads this record before it counts and writes it after, so the later one's
    save conflicts, it runs again and counts again. Opened by the first one."""

    @staticmethod
    def create_id(organization_id: uuid.UUID, **_: object) -> uuid.UUID:
        return derived_id("admin-changes", organization_id)

    @event("Opened")
    def __init__(self, organization_id: uuid.UUID):
        self.organization_id = organization_id

    @event("Revoked")
    def revoked(self, user_id: uuid.UUID, by: uuid.UUID) -> None:
        """``user_id`` is no admin of the organization any more (demoted or removed by ``by``)."""


class Roster(Aggregate):
    """Who belongs to a class (students, and parents through them), or to an
    organization's staff (admins, teachers). Rosters split the members list so
    that people joining different classes at once do not contend."""

    @staticmethod
    def create_id(organization_id: uuid.UUID, group: str, **_: object) -> uuid.UUID:
        return derived_id("roster", organization_id, group)

    @event("Opened")
    def __init__(self, organization_id: uuid.UUID, group: str):
        self.organization_id = organization_id
        self.group = group  # a class id, or "staff"
        self.user_ids: list[str] = []

    @event("Added")
    def add(self, user_id: uuid.UUID) -> None:
        if str(user_id) not in self.user_ids:
            self.user_ids.append(str(user_id))

    @event("Removed")
    def remove(self, user_id: uuid.UUID) -> None:
        self.user_ids = [u for u in self.user_ids if u != str(user_id)]


class JournalGrants(Aggregate):
    """The roles e-journals gave a person in organizations (EJ-2), by journal: the bridge reports the whole set of
    the person's schools each time, and a school no longer in a journal's set takes back the role that journal
    gave there. Only what a journal gave: a role the person held already (the school's invite) is not its to take.
    ``reported_at``: a journal's report older than the last one applied changes nothing (they may come late)."""

    @staticmethod
    def create_id(user_id: uuid.UUID, **_: object) -> uuid.UUID:
        return derived_id("journal-grants", user_id)

    @event("Opened")
    def __init__(self, user_id: uuid.UUID):
        self.user_id = user_id
        self.granted: dict[str, dict[str, str]] = {}  # journal (provider) id -> organization id -> role
        self.reported_at: dict[str, datetime] = {}

    def of(self, provider_id: uuid.UUID) -> dict[str, str]:
        return dict(self.granted.get(str(provider_id), {}))

    def stale(self, provider_id: uuid.UUID, at: datetime) -> bool:
        last = self.reported_at.get(str(provider_id))
        return last is not None and at < last

    def gives(self, organization_id: str, role: str, besides: uuid.UUID) -> bool:
        """Whether a journal other than ``besides`` gave this role there too."""
        return any(given.get(organization_id) == role for journal, given in self.granted.items()
                   if journal != str(besides))

    @event("Reported")
    def report(self, provider_id: uuid.UUID, granted: dict[str, str], at: datetime) -> None:
        self.granted = {**self.granted, str(provider_id): dict(granted)}
        self.reported_at = {**self.reported_at, str(provider_id): at}

    def holds(self, organization_id: uuid.UUID, role: str) -> bool:
        return any(given.get(str(organization_id)) == role for given in self.granted.values())

    @event("KeptBySchool")
    def kept_by_school(self, organization_id: uuid.UUID, role: str) -> None:
        """The school gave the role there too (its invite placed the person, an admin set it): no journal's to
        take back any more."""
        org = str(organization_id)
        self.granted = {journal: {o: r for o, r in given.items() if not (o == org and r == role)}
                        for journal, given in self.granted.items()}


class Relatives(Aggregate):
    """One side of the parent links identity made (PL-4): a child's parents
    (``side="parents"``: a child joining a school later brings them along) or a
    parent's children (``side="children"``).

    ``versions``: for each parent (or child), the version of the child's ``ParentLinks`` in identity (its events'
    ``sequence``) that the last link or unlink applied was. ParentLinked and ParentUnlinked come through two queues,
    so out of order: an older event than the one applied changes nothing (a late unlink undid a relink for good),
    and an unlink that comes before its link is kept without a link (a tombstone), so the late link makes nobody a
    parent (an unlinked stranger saw the child's class). Events without a sequence keep no version."""

    @staticmethod
    def create_id(user_id: uuid.UUID, side: str, **_: object) -> uuid.UUID:
        return derived_id(side, user_id)

    @event("Opened")
    def __init__(self, user_id: uuid.UUID, side: str):
        self.ids: list[str] = []
        self.versions: dict[str, int] = {}

    def outdated(self, other_id: uuid.UUID, version: int | None) -> bool:
        """Whether a link event of that version is older than (or as old as) the last applied for that person."""
        return outdated(version, getattr(self, "versions", {}).get(str(other_id), 0))

    @event("Linked")
    def link(self, other_id: uuid.UUID, version: int | None = None) -> None:
        if str(other_id) not in self.ids:
            self.ids.append(str(other_id))
        self._as_of(other_id, version)

    @event("Unlinked")
    def unlink(self, other_id: uuid.UUID, version: int | None = None) -> None:
        self.ids = [i for i in self.ids if i != str(other_id)]
        self._as_of(other_id, version)

    def _as_of(self, other_id: uuid.UUID, version: int | None) -> None:
        if version is not None:  # none: from before events had one, the order of arrival is all there is
            self.versions = {**getattr(self, "versions", {}), str(other_id): version}


class PersonOrganizations(Aggregate):
    """The organizations a person belongs to (for "my schools" and for parents)."""

    @staticmethod
    def create_id(user_id: uuid.UUID, **_: object) -> uuid.UUID:
        return derived_id("orgs-of", user_id)

    @event("Opened")
    def __init__(self, user_id: uuid.UUID):
        self.user_id = user_id
        self.organization_ids: list[str] = []

    @event("Added")
    def add(self, organization_id: uuid.UUID) -> None:
        if str(organization_id) not in self.organization_ids:
            self.organization_ids.append(str(organization_id))


# -- invites and join requests ------------------------------------------------------------


class InviteLink(Aggregate):
    """SC-5, SC-6, ID-4: a link that places people straight into a class with a role."""

    @event("Created")
    def __init__(self, organization_id: uuid.UUID, class_id: uuid.UUID | None, role: str,
                 expires_at: datetime | None, max_uses: int | None, email_registration_allowed: bool,
                 created_by: uuid.UUID):
        self.organization_id = organization_id
        self.class_id = class_id
        self.role = role
        self.expires_at = expires_at
        self.max_uses = max_uses
        self.email_registration_allowed = email_registration_allowed
        self.created_by = created_by
        self.uses = 0
        self.revoked = False

    def check_usable(self, now: datetime) -> None:
        if self.revoked:
            raise Gone("invite.revoked", "This invite link was revoked by the school.")
        if self.expires_at is not None and now >= self.expires_at:
            raise Gone("invite.expired", "This invite link has expired; ask the school for a new one.")
        if self.max_uses is not None and self.uses >= self.max_uses:
            raise Gone("invite.exhausted", "This invite link has been used as many times as it allows.")

    def use(self, user_id: uuid.UUID, now: datetime) -> None:
        self.check_usable(now)
        self._used(user_id)

    @event("Used")
    def _used(self, user_id: uuid.UUID) -> None:
        self.uses += 1

    @event("Revoked")
    def revoke(self, revoked_by: uuid.UUID) -> None:
        self.revoked = True


class InviteIndex(Aggregate):
    """An organization's invite links, for the admin's list."""

    @staticmethod
    def create_id(organization_id: uuid.UUID, **_: object) -> uuid.UUID:
        return derived_id("invites", organization_id)

    @event("Opened")
    def __init__(self, organization_id: uuid.UUID):
        self.invite_ids: list[str] = []

    @event("Added")
    def add(self, invite_id: uuid.UUID) -> None:
        self.invite_ids.append(str(invite_id))


class JoinRequest(Aggregate):
    """SC-2, SC-3: a person without an invite asks to join; admins add or hide."""

    @staticmethod
    def create_id(organization_id: uuid.UUID, user_id: uuid.UUID, **_: object) -> uuid.UUID:
        return derived_id("join-request", organization_id, user_id)

    @event("Sent")
    def __init__(self, organization_id: uuid.UUID, user_id: uuid.UUID, message: str | None):
        self.organization_id = organization_id
        self.user_id = user_id
        self.message = message
        self.status = "pending"

    def _pending(self) -> None:
        if self.status == "hidden":
            raise Gone("join_request.hidden", "This request was hidden for good.")
        if self.status != "pending":
            raise Conflict("join_request.decided", "This request was already handled.")

    def resend(self, message: str | None) -> None:
        if self.status == "hidden":
            raise Forbidden("join_request.hidden",
                            "The school declined your request; you can join with an invite link from the school.")
        self._resent(message)

    @event("Resent")
    def _resent(self, message: str | None) -> None:
        self.message = message
        self.status = "pending"

    def accept(self, admin_id: uuid.UUID, role: str, class_id: uuid.UUID | None) -> None:
        self._pending()
        self._accepted(admin_id, role, class_id)

    @event("Accepted")
    def _accepted(self, admin_id: uuid.UUID, role: str, class_id: uuid.UUID | None) -> None:
        self.status = "accepted"

    def hide(self, admin_id: uuid.UUID) -> None:
        self._pending()
        self._hidden(admin_id)

    @event("Hidden")
    def _hidden(self, admin_id: uuid.UUID) -> None:
        self.status = "hidden"


class JoinRequestQueue(Aggregate):
    """An organization's pending join requests."""

    @staticmethod
    def create_id(organization_id: uuid.UUID, **_: object) -> uuid.UUID:
        return derived_id("join-requests", organization_id)

    @event("Opened")
    def __init__(self, organization_id: uuid.UUID):
        self.pending: list[str] = []  # user ids

    @event("Added")
    def add(self, user_id: uuid.UUID) -> None:
        if str(user_id) not in self.pending:
            self.pending.append(str(user_id))

    @event("Removed")
    def remove(self, user_id: uuid.UUID) -> None:
        self.pending = [u for u in self.pending if u != str(user_id)]


# -- materials ----------------------------------------------------------------------------


class Document(Aggregate):
    """SC-10: a file for all members of the organization."""

    @event("Published")
    def __init__(self, organization_id: uuid.UUID, title: str, file_name: str, media_type: str, size: int,
                 blob_key: str, published_by: uuid.UUID):
        self.organization_id = organization_id
        self.title, self.file_name = title, file_name
        self.media_type, self.size = media_type, size
        self.blob_key = blob_key
        self.published_by = published_by
        self.deleted = False

    @event("Deleted")
    def delete(self, deleted_by: uuid.UUID) -> None:
        self.deleted = True


class Image(Aggregate):
    """An image school issued to a teacher or admin of an organization (an article's
    cover): the only way a cover reaches the blob store (issue #12)."""

    @event("Uploaded")
    def __init__(self, organization_id: uuid.UUID, uploaded_by: uuid.UUID, file_name: str, media_type: str,
                 size: int, blob_key: str):
        self.organization_id = organization_id
        self.uploaded_by = uploaded_by
        self.file_name, self.media_type, self.size = file_name, media_type, size
        self.blob_key = blob_key


def _cover_by_image(state: dict) -> None:
    """Version 1 of the article's events carried a blob key as the client gave it: never
    trusted, so an old article has no cover until it is given an image (issue #12)."""
    state.pop("cover_blob_key", None)
    state["cover_image_id"] = None


class Article(Aggregate):
    """SC-11: formatted text with a cover image, a draft until published."""

    class Drafted(Aggregate.Created):
        organization_id: uuid.UUID
        author_id: uuid.UUID
        title: str
        html: str
        cover_image_id: uuid.UUID | None
        class_version = 2
        upcast_v1_v2 = staticmethod(_cover_by_image)

    class Edited(Aggregate.Event):
        title: str
        html: str
        cover_image_id: uuid.UUID | None
        class_version = 2
        upcast_v1_v2 = staticmethod(_cover_by_image)

    @event(Drafted)
    def __init__(self, organization_id: uuid.UUID, author_id: uuid.UUID, title: str, html: str,
                 cover_image_id: uuid.UUID | None):
        self.organization_id = organization_id
        self.author_id = author_id
        self.title, self.html, self.cover_image_id = title, html, cover_image_id
        self.published_at: datetime | None = None

    @event(Edited)
    def edit(self, title: str, html: str, cover_image_id: uuid.UUID | None) -> None:
        self.title, self.html, self.cover_image_id = title, html, cover_image_id

    def publish(self, published_at: datetime) -> None:
        self._published(self.organization_id, self.author_id, self.title, published_at)

    @event("Published")
    def _published(self, organization_id: uuid.UUID, author_id: uuid.UUID, title: str,
                   published_at: datetime) -> None:
        self.published_at = published_at


class MaterialsIndex(Aggregate):
    """An organization's documents and articles, newest last."""

    @staticmethod
    def create_id(organization_id: uuid.UUID, kind: str, **_: object) -> uuid.UUID:
        return derived_id("materials", organization_id, kind)

    @event("Opened")
    def __init__(self, organization_id: uuid.UUID, kind: str):
        self.ids: list[str] = []

    @event("Added")
    def add(self, material_id: uuid.UUID) -> None:
        self.ids.append(str(material_id))


class Channel(Aggregate):
    """SC-12: one-to-many: admins post, members read."""

    @event("Created")
    def __init__(self, organization_id: uuid.UUID, name: str, created_by: uuid.UUID):
        self.organization_id = organization_id
        self.name = name
        self.posts: list[dict] = []

    def post(self, post_id: uuid.UUID, author_id: uuid.UUID, text: str, published_at: datetime) -> None:
        self._posted(self.organization_id, post_id, author_id, text, published_at)

    @event("Posted")
    def _posted(self, organization_id: uuid.UUID, post_id: uuid.UUID, author_id: uuid.UUID, text: str,
                published_at: datetime) -> None:
        self.posts.append({"post_id": str(post_id), "author_id": str(author_id), "text": text,
                           "published_at": published_at.isoformat()})
