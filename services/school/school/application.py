"""School's application: commands and queries, no transport (docs/rules.md RO-*, SC-*).

Authorization lives here, where the data lives: every command names its actor
and checks the actor's membership and roles in the organization concerned.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable
from datetime import date, datetime
from typing import Any, TypeVar

import nh3
from eventsourcing.persistence import IntegrityError

from school.domain import (
    ApplicationQueue,
    Article,
    Channel,
    CityDirectory,
    Document,
    GraduationYear,
    Image,
    InviteIndex,
    InviteLink,
    JoinRequest,
    JoinRequestQueue,
    MaterialsIndex,
    Membership,
    Organization,
    OrganizationApplication,
    Person,
    PersonOrganizations,
    PhoneOwner,
    Relatives,
    Roster,
    SchoolClass,
    city_key,
    validate_class,
)
from shared.blobs import document_max_bytes
from shared.clock import utcnow
from shared.config import env_str
from shared.contracts import CloudEvent
from shared.contracts.api.school import INVITE_ROLES, ROLES, VALIDITY_PRESETS
from shared.errors import Conflict, Forbidden, Invalid, NotFound, NotYet
from shared.links import link_id_from_token, link_token
from shared.paging import decode_cursor, encode_cursor
from shared.phones import normalise_phone
from shared.store import ServiceApplication, command, once_per_event
from shared.uploads import IMAGE_MAX_BYTES, IMAGE_TYPES, Quotas, clean_file_name, is_executable, quota_exceeded

T = TypeVar("T")
UNPLACED = "unplaced"  # the roster of pupils and parents with no class here yet (from the e-journal, EJ-2)

DOCUMENT_TYPES = {
    "application/pdf", "application/msword", "application/vnd.ms-excel", "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.oasis.opendocument.text", "application/vnd.oasis.opendocument.spreadsheet",
    "application/vnd.oasis.opendocument.presentation", "text/plain", "image/jpeg", "image/png", "video/mp4",
    "audio/mpeg",
}
# The largest file of each kind an upload here may be (asked before its bytes are read).
UPLOAD_LIMITS: dict[str, Callable[[], int]] = {"document": document_max_bytes, "image": lambda: IMAGE_MAX_BYTES}
ARTICLE_TAGS = {"p", "br", "b", "strong", "i", "em", "u", "s", "h2", "h3", "h4", "ul", "ol", "li", "blockquote",
                "a", "img", "figure", "figcaption", "video", "source", "hr", "table", "thead", "tbody", "tr",
                "th", "td"}
ARTICLE_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt"}, "video": {"src", "controls", "poster"},
                      "source": {"src", "type"}, "th": {"colspan", "rowspan"}, "td": {"colspan", "rowspan"}}


def sanitize_html(html: str) -> str:
    """Articles keep formatting, images and video, never scripts or handlers (SC-11)."""
    return nh3.clean(html, tags=ARTICLE_TAGS, attributes=ARTICLE_ATTRIBUTES, url_schemes={"http", "https"},
                     link_rel="noopener noreferrer")


def junior_grade(class_name: str) -> int | None:
    """The grade a class name starts with ("3Б" -> 3), if it does."""
    found = re.match(r"\s*(\d{1,2})", class_name)
    return int(found.group(1)) if found else None


def operator_phones() -> set[str]:
    return {normalise_phone(p) for p in env_str("SFERA_OPERATOR_PHONES", "").split(",") if p.strip()}


class OperatorConsole:
    """The platform operator at the machine itself (``python -m school.operator``): the
    console builds this application on school's store and acts as ``CONSOLE``. It is
    an object of the console's own process; nothing that arrives over RPC can be it."""

    def __repr__(self) -> str:
        return "<operator console>"


CONSOLE = OperatorConsole()
Actor = uuid.UUID | OperatorConsole | None


def page(items: list[T], key: Callable[[T], str], cursor: str | None, limit: int) -> tuple[list[T], str | None]:
    """Cursor paging over items sorted by ``key``: the cursor stands for the last key seen (shared.paging)."""
    ordered = sorted(items, key=key)
    after = decode_cursor(cursor)
    if after is not None:
        ordered = [i for i in ordered if key(i) > after]
    chunk = ordered[:limit]
    return chunk, (encode_cursor(key(chunk[-1])) if len(ordered) > limit else None)



class SchoolApplication(ServiceApplication):
    name = "school"
    clock: Callable[[], datetime] = staticmethod(utcnow)  # "now", replaceable: tests set the date
    snapshotting_intervals = {Roster: 100, Organization: 100, CityDirectory: 100, InviteIndex: 100,
                              MaterialsIndex: 100, Channel: 50, JoinRequestQueue: 100, GraduationYear: 100,
                              ApplicationQueue: 100, InviteLink: 100, PersonOrganizations: 50}

    # -- helpers -------------------------------------------------------------------
    def organization(self, organization_id: uuid.UUID) -> Organization:
        return self.get_as(Organization, organization_id, "organization.not_found", "No such organization.")

    def membership(self, organization_id: uuid.UUID, user_id: uuid.UUID) -> Membership | None:
        found = self.find(Membership, Membership.create_id(organization_id, user_id))
        return found if found is not None and found.active else None

    def _member(self, organization_id: uuid.UUID, actor_id: uuid.UUID) -> Membership:
        """The actor's membership; others may not even learn what is inside (404)."""
        self.organization(organization_id)
        member = self.membership(organization_id, actor_id)
        if member is None:
            raise Forbidden("organization.members_only", "Only members of this organization can do this.")
        return member

    def _require(self, organization_id: uuid.UUID, actor_id: uuid.UUID, *roles: str) -> Membership:
        member = self._member(organization_id, actor_id)
        if not any(member.has(r) for r in roles):
            raise Forbidden("organization.role_required", f"Only {' or '.join(roles)}s of this organization "
                                                          "can do this.", {"roles": list(roles)})
        return member

    def today(self) -> date:
        return self.clock().date()

    def class_graduated(self, school_class: SchoolClass) -> bool:
        """SC-4: true from 1 July of the end year on, whether or not the graduation job has run."""
        return school_class.graduated_on(self.today())

    def _open_class(self, school_class: SchoolClass) -> SchoolClass:
        """The class, unless it has graduated: nobody is invited or admitted into it any more (SC-4)."""
        if self.class_graduated(school_class):
            raise Conflict("class.graduated", "This class has graduated.", {"class_id": str(school_class.id)})
        return school_class

    def _school_class(self, organization_id: uuid.UUID, class_id: uuid.UUID) -> SchoolClass:
        school_class = self.get_as(SchoolClass, class_id, "class.not_found", "No such class.")
        if school_class.organization_id != organization_id:
            raise NotFound("class.not_found", "No such class.")
        return school_class

    # -- people, from identity's events --------------------------------------------------------
    @once_per_event
    def on_user_registered(self, event: CloudEvent) -> bool:
        """UserRegistered: know the person and their phone; a phone an approved
        application named becomes that organization's first admin (SC-1)."""
        data = event.data
        changed: list[Any] = []
        if data["user_id"] not in self.repository:
            changed.append(Person(user_id=data["user_id"], registered_via=data["registered_via"],
                                  registered_at=data["registered_at"], last_name=data["last_name"],
                                  first_name=data["first_name"], phone=data.get("phone")))
        if data.get("phone"):
            owner = self.find(PhoneOwner, PhoneOwner.create_id(data["phone"])) or PhoneOwner(phone=data["phone"])
            owner.own(data["user_id"])
            pending: dict[uuid.UUID, Any] = {}
            for organization_id in owner.awaiting_admin:
                self._join(uuid.UUID(organization_id), data["user_id"], "admin", None, "application", pending)
            changed += pending.values()
            if owner.awaiting_admin:
                owner.admin_arrived()
            changed.append(owner)
        return self.process_once(event.id, *changed)

    @once_per_event
    def on_profile_updated(self, event: CloudEvent) -> bool:
        person = self.find(Person, event.data["user_id"])
        if person is None:
            raise NotYet("the person's UserRegistered has not arrived yet")
        person.rename(event.data["last_name"], event.data["first_name"])
        return self.process_once(event.id, person)

    @once_per_event
    def on_phone_detached(self, event: CloudEvent) -> bool:
        """ID-6: the number now belongs to the new account."""
        changed = []
        for owner in self._owners_of(event.data["user_id"]):
            owner.own(event.data["new_user_id"])
            changed.append(owner)
        return self.process_once(event.id, *changed)

    def _owners_of(self, user_id: uuid.UUID) -> Iterable[PhoneOwner]:
        # The phone is not in the event (privacy); it is in the stream of UserRegistered we kept.
        person = self.find(Person, user_id)
        phone = getattr(person, "phone", None)
        owner = self.find(PhoneOwner, PhoneOwner.create_id(phone)) if phone else None
        return [owner] if owner is not None and owner.user_id == user_id else []

    @once_per_event
    def on_parent_linked(self, event: CloudEvent) -> bool:
        """Parents become members through their children (RO-5, PL-4): in every
        organization where the child studies, in the child's class; a school the
        child joins later brings them too."""
        parent_id, child_id = event.data["parent_user_id"], event.data["child_user_id"]
        parents, children = self._relatives(child_id, "parents"), self._relatives(parent_id, "children")
        parents.link(parent_id)
        children.link(child_id)
        changed: list[Any] = [parents, children]
        child_orgs = self.find(PersonOrganizations, PersonOrganizations.create_id(child_id))
        pending: dict[uuid.UUID, Any] = {}
        for organization_id in (child_orgs.organization_ids if child_orgs else []):
            child = self.membership(uuid.UUID(organization_id), child_id)
            parent = self.membership(uuid.UUID(organization_id), parent_id)
            if child is not None and child.has("student") and not (parent and parent.has("parent")):
                self._join(uuid.UUID(organization_id), parent_id, "parent", child.class_id, "parent_link", pending)
        return self.process_once(event.id, *changed, *pending.values())

    @once_per_event
    def on_journal_memberships(self, event: CloudEvent) -> bool:
        """EJ-2: a person linked to an e-journal belongs to the organizations their journal school is
        bound to, with the journal's role (a pupil's class stays the journal's until an admin sets one, SC-8)."""
        data = event.data
        user_id, role = data["user_id"], data["role"]
        pending: dict[uuid.UUID, Any] = {}
        for organization_id in data["organization_ids"]:
            if self.find(Organization, organization_id) is None:
                continue  # bound to an organization that does not exist: nothing to join
            membership = pending.get(Membership.create_id(organization_id, user_id)) or self.membership(
                organization_id, user_id)
            if membership is None or not membership.has(role):
                self._join(organization_id, user_id, role, None, "ejournal", pending)
        return self.process_once(event.id, *pending.values())

    @once_per_event
    def on_parent_unlinked(self, event: CloudEvent) -> bool:
        """A parent no longer linked to any child studying in an organization stops
        being a parent there (and leaves if that was their only role)."""
        parent_id, child_id = event.data["parent_user_id"], event.data["child_user_id"]
        parents, children = self._relatives(child_id, "parents"), self._relatives(parent_id, "children")
        if str(parent_id) not in parents.ids:
            raise NotYet("the ParentLinked this undoes has not arrived yet")
        parents.unlink(parent_id)
        children.unlink(child_id)
        changed: list[Any] = [parents, children]
        child_orgs = self.find(PersonOrganizations, PersonOrganizations.create_id(child_id))
        for organization_id in (child_orgs.organization_ids if child_orgs else []):
            org = uuid.UUID(organization_id)
            membership = self.membership(org, parent_id)
            if membership is None or not membership.has("parent") or any(
                    (kid := self.membership(org, uuid.UUID(c))) is not None and kid.has("student")
                    for c in children.ids):
                continue
            roles = [r for r in membership.roles if r != "parent"]
            if roles:
                membership.change(roles, None, event.data["unlinked_by"])
            else:
                membership.leave(event.data["unlinked_by"])
            changed.append(membership)
        return self.process_once(event.id, *changed)

    def _relatives(self, user_id: uuid.UUID, side: str) -> Relatives:
        return self.find(Relatives, Relatives.create_id(user_id, side)) or Relatives(user_id=user_id, side=side)

    def get_person(self, user_id: uuid.UUID) -> Person:
        return self.get_as(Person, user_id, "person.not_found", "School does not know this person (yet).")

    def person_name(self, user_id: str) -> dict[str, Any]:
        person = self.find(Person, uuid.UUID(user_id))
        return {"last_name": getattr(person, "last_name", None), "first_name": getattr(person, "first_name", None)}

    # -- organizations (SC-1, SC-2) ---------------------------------------------------------------
    def is_operator(self, actor_id: uuid.UUID | None) -> bool:
        if actor_id is None:
            return False
        phones = operator_phones()
        return any(self._phone_owned_by(p, actor_id) for p in phones)

    def _phone_owned_by(self, phone: str, user_id: uuid.UUID) -> bool:
        owner = self.find(PhoneOwner, PhoneOwner.create_id(phone))
        return owner is not None and owner.user_id == user_id

    def require_operator(self, actor: Actor) -> uuid.UUID | None:
        """Refuses (operator.required) anyone but a platform operator (a signed-in person
        whose phone is in SFERA_OPERATOR_PHONES, or the console); returns the id to record
        as the one who decided (none for the console)."""
        if actor is CONSOLE:
            return None
        if not isinstance(actor, uuid.UUID) or not self.is_operator(actor):
            raise Forbidden("operator.required", "Only a platform operator can do this.")
        return actor

    def submit_application(self, actor_id: uuid.UUID | None, name: str, kind: str, country: str, city: str,
                           admin_phone: str, note: str | None) -> OrganizationApplication:
        problems = {}
        if not name.strip():
            problems["name"] = "Required."
        if kind not in ("school", "college"):
            problems["kind"] = "school or college."
        if not re.fullmatch(r"[A-Za-z]{2}", country.strip()):
            problems["country"] = "An ISO 3166 two-letter code, e.g. RU."
        if not city.strip():
            problems["city"] = "Required."
        if problems:
            raise Invalid("application.invalid", "The application is not valid.", {"fields": problems})
        admin_phone = normalise_phone(admin_phone)

        def submit() -> OrganizationApplication:
            application = OrganizationApplication(name=name.strip(), kind=kind, country=country.strip().upper(),
                                                  city=" ".join(city.split()), admin_phone=admin_phone,
                                                  submitted_by=actor_id, note=note)
            queue = self.find(ApplicationQueue, ApplicationQueue.create_id()) or ApplicationQueue()
            queue.add(application.id)
            self.save(application, queue)
            return application

        return self.retrying(submit)

    def pending_applications(self, actor: Actor) -> list[OrganizationApplication]:
        self.require_operator(actor)
        queue = self.find(ApplicationQueue, ApplicationQueue.create_id())
        return [self.repository.get(uuid.UUID(a)) for a in (queue.pending if queue else [])]

    def approve_application(self, actor: Actor, application_id: uuid.UUID) -> Organization:
        """SC-1: the organization exists; the person with the named phone is its first
        admin now, or as soon as they register."""
        actor_id = self.require_operator(actor)

        def approve() -> Organization:
            application = self.get_as(OrganizationApplication, application_id, "application.not_found",
                                    "No such application.")
            organization_id = application.approve(actor_id)
            organization = Organization(organization_id=organization_id, name=application.name,
                                        kind=application.kind, country=application.country, city=application.city,
                                        approved_by=actor_id)
            directory = self.find(CityDirectory, CityDirectory.create_id(application.country, application.city)) \
                or CityDirectory(country=application.country, city=application.city)
            directory.list_organization(organization_id, application.name)
            queue = self.get_as(ApplicationQueue, ApplicationQueue.create_id(), "application.not_found", "")
            queue.remove(application_id)
            owner = self.find(PhoneOwner, PhoneOwner.create_id(application.admin_phone)) or PhoneOwner(
                phone=application.admin_phone)
            changed: list[Any] = [application, organization, directory, queue, owner]
            if owner.user_id is not None:
                changed += self._join(organization_id, owner.user_id, "admin", None, "application")
            else:
                owner.await_admin(organization_id)
            self.save(*changed)
            return organization

        return self.retrying(approve)

    @command
    def reject_application(self, actor: Actor, application_id: uuid.UUID, reason: str) -> None:
        actor_id = self.require_operator(actor)
        application = self.get_as(OrganizationApplication, application_id, "application.not_found",
                                "No such application.")
        application.reject(actor_id, reason)
        queue = self.get_as(ApplicationQueue, ApplicationQueue.create_id(), "application.not_found", "")
        queue.remove(application_id)
        self.save(application, queue)

    @command
    def update_organization(self, actor_id: uuid.UUID, organization_id: uuid.UUID, details: dict[str, Any]
                            ) -> Organization:
        """RO-2: admins fill in and edit the organization's details."""
        self._require(organization_id, actor_id, "admin")
        organization = self.organization(organization_id)
        old_key = city_key(organization.country, organization.city)
        name = details.get("name", organization.name).strip()
        country = details.get("country", organization.country).strip().upper()
        city = " ".join(details.get("city", organization.city).split())
        if not name or not city or not re.fullmatch(r"[A-Z]{2}", country):
            raise Invalid("organization.invalid", "Name, city and a two-letter country code are required.")
        settings = {**organization.settings, **details.get("settings", {})}
        organization.update(name, country, city, details.get("address", organization.address),
                            details.get("website", organization.website), settings)
        changed: list[Any] = [organization]
        new_directory = self.find(CityDirectory, CityDirectory.create_id(country, city)) or CityDirectory(
            country=country, city=city)
        if city_key(country, city) != old_key:
            old = self.find(CityDirectory, CityDirectory.create_id(*old_key))
            if old is not None:
                old.unlist(organization_id)
                changed.append(old)
        new_directory.list_organization(organization_id, name)
        changed.append(new_directory)
        self.save(*changed)
        return organization

    def search(self, country: str, city: str, cursor: str | None, limit: int) -> tuple[list[dict], str | None]:
        """SC-2: organizations of a city, by name, a page at a time."""
        directory = self.find(CityDirectory, CityDirectory.create_id(country, city))
        items = [{"organization_id": k, "name": v} for k, v in (directory.organizations if directory else {}).items()]
        return page(items, lambda i: f"{i['name'].casefold()}|{i['organization_id']}", cursor, limit)

    # -- classes (SC-4) ----------------------------------------------------------------------------
    def create_class(self, actor_id: uuid.UUID, organization_id: uuid.UUID, name: str, start_year: int,
                     end_year: int) -> SchoolClass:
        self._require(organization_id, actor_id, "admin")
        validate_class(name, start_year, end_year)

        def create() -> SchoolClass:
            organization = self.organization(organization_id)
            school_class = SchoolClass(organization_id=organization_id, name=name, start_year=start_year,
                                       end_year=end_year)
            organization.add_class(school_class.id)
            year = self.find(GraduationYear, GraduationYear.create_id(end_year)) or GraduationYear(year=end_year)
            year.add(school_class.id)
            self.save(school_class, organization, year)
            return school_class

        return self.retrying(create)

    def classes(self, actor_id: uuid.UUID, organization_id: uuid.UUID) -> list[SchoolClass]:
        self._member(organization_id, actor_id)
        return [self.repository.get(uuid.UUID(c)) for c in self.organization(organization_id).class_ids]

    def graduate_due(self, today: date, first_year: int = 1990) -> int:
        """SC-4: every class whose end year has come is graduated, once (a second
        run finds nothing to do)."""
        graduated = 0
        now = self.clock()
        for year in range(first_year, today.year + 1):
            calendar = self.find(GraduationYear, GraduationYear.create_id(year))
            for class_id in calendar.class_ids if calendar else []:
                school_class: SchoolClass = self.repository.get(uuid.UUID(class_id))
                if school_class.due(today):
                    school_class.graduate(now)
                    try:
                        self.save(school_class)
                        graduated += 1
                    except IntegrityError:
                        pass  # another run graduated it a moment ago
        return graduated

    # -- members (RO-*, SC-6..SC-9) -------------------------------------------------------------------
    def _join(self, organization_id: uuid.UUID, user_id: uuid.UUID, role: str, class_id: uuid.UUID | None,
              via: str, pending: dict[uuid.UUID, Any] | None = None) -> list[Any]:
        """The aggregates to save for a person joining (or gaining a role). ``pending``
        holds what this command already changed, so a roster created for a child
        is the same object when their parent joins it a moment later."""
        pending = {} if pending is None else pending

        def load(cls: type[T], aggregate_id: uuid.UUID, make: Callable[[], T]) -> T:
            if aggregate_id not in pending:
                pending[aggregate_id] = self.find(cls, aggregate_id) or make()
            return pending[aggregate_id]

        membership_id = Membership.create_id(organization_id, user_id)
        membership = pending.get(membership_id) or self.find(Membership, membership_id)
        if membership is None:
            membership = Membership(organization_id=organization_id, user_id=user_id, role=role, class_id=class_id,
                                    via=via)
        elif not membership.active:
            membership.rejoin(role, class_id, via)
        elif role in membership.roles and (class_id is None or class_id == membership.class_id):
            raise Conflict("membership.already_member", "You are already a member with this role.")
        else:
            membership.add_role(role, class_id, via)
        pending[membership_id] = membership
        group = str(class_id) if class_id is not None and role in ("student", "parent") else (
            UNPLACED if role in ("student", "parent") else "staff")
        roster = load(Roster, Roster.create_id(organization_id, group),
                      lambda: Roster(organization_id=organization_id, group=group))
        roster.add(user_id)
        orgs = load(PersonOrganizations, PersonOrganizations.create_id(user_id),
                    lambda: PersonOrganizations(user_id=user_id))
        orgs.add(organization_id)
        if role == "student":
            parents = self.find(Relatives, Relatives.create_id(user_id, "parents"))
            for parent_id in (parents.ids if parents else []):
                parent = self.membership(organization_id, uuid.UUID(parent_id))
                if parent is None or not parent.has("parent"):
                    self._join(organization_id, uuid.UUID(parent_id), "parent", class_id, "parent_link", pending)
        return list(pending.values())

    def members(self, actor_id: uuid.UUID, organization_id: uuid.UUID, class_id: uuid.UUID | None = None,
                cursor: str | None = None, limit: int = 50) -> tuple[list[dict], str | None]:
        """The members list. Admins and teachers see everyone with roles and classes;
        a student or parent sees the staff and their own class (names only)."""
        actor = self._member(organization_id, actor_id)
        staff_view = actor.has("admin") or actor.has("teacher")
        organization = self.organization(organization_id)
        if staff_view:
            groups = ["staff", UNPLACED, *organization.class_ids] if class_id is None else [str(class_id)]
        else:
            own = str(actor.class_id) if actor.class_id else None
            if class_id is not None and str(class_id) != own:
                raise Forbidden("organization.class_only", "You can see the members of your own class only.")
            groups = [g for g in ("staff", own) if g and (class_id is None or g == own)]
        user_ids: set[str] = set()
        for group in groups:
            roster = self.find(Roster, Roster.create_id(organization_id, group))
            user_ids.update(roster.user_ids if roster else [])
        rows = []
        for user_id in user_ids:
            membership = self.membership(organization_id, uuid.UUID(user_id))
            if membership is None:
                continue
            row: dict[str, Any] = {"user_id": user_id, **self.person_name(user_id), "roles": membership.roles}
            if staff_view:
                row.update(class_id=membership.class_id, subjects=membership.subjects)
            rows.append(row)
        return page(rows, lambda r: f"{(r['last_name'] or '').casefold()}|{r['user_id']}", cursor, limit)

    def my_organizations(self, user_id: uuid.UUID) -> list[tuple[Organization, Membership]]:
        orgs = self.find(PersonOrganizations, PersonOrganizations.create_id(user_id))
        found = []
        for organization_id in orgs.organization_ids if orgs else []:
            membership = self.membership(uuid.UUID(organization_id), user_id)
            if membership is not None:
                found.append((self.organization(uuid.UUID(organization_id)), membership))
        return found

    @command
    def appoint_admin(self, actor_id: uuid.UUID, organization_id: uuid.UUID, user_id: uuid.UUID) -> Membership:
        """RO-7: an admin makes an existing member an admin; any number of admins."""
        self._require(organization_id, actor_id, "admin")
        membership = self.membership(organization_id, user_id)
        if membership is None:
            raise NotFound("member.not_found", "This person is not a member of the organization.")
        if membership.has("admin"):
            raise Conflict("member.already_admin", "This member is already an admin.")
        membership.add_role("admin", None, "appointed")
        changed: list[Any] = [membership]
        staff = self.find(Roster, Roster.create_id(organization_id, "staff")) or Roster(
            organization_id=organization_id, group="staff")
        staff.add(user_id)
        changed.append(staff)
        self.save(*changed)
        return membership

    @command
    def change_member(self, actor_id: uuid.UUID, organization_id: uuid.UUID, user_id: uuid.UUID,
                      roles: list[str], class_id: uuid.UUID | None) -> Membership:
        """SC-8, SC-9: an admin corrects a member's role(s) and class."""
        self._require(organization_id, actor_id, "admin")
        if not roles or any(r not in ROLES for r in roles):
            raise Invalid("member.invalid_roles", f"Roles are some of {', '.join(ROLES)}.")
        if ("student" in roles or "parent" in roles) and class_id is None:
            raise Invalid("member.class_required", "A student or parent belongs to a class.")
        if class_id is not None:
            self._school_class(organization_id, class_id)
        membership = self.membership(organization_id, user_id)
        if membership is None:
            raise NotFound("member.not_found", "This person is not a member of the organization.")
        if membership.has("admin") and "admin" not in roles and self._admin_count(organization_id) <= 1:
            raise Conflict("member.last_admin", "An organization keeps at least one admin.")
        old_group = str(membership.class_id) if membership.class_id else None
        membership.change(sorted(set(roles), key=ROLES.index), class_id, actor_id)
        changed: list[Any] = [membership]
        new_group = str(class_id) if class_id is not None and ({"student", "parent"} & set(roles)) else None
        if old_group and old_group != new_group:
            old = self.get_as(Roster, Roster.create_id(organization_id, old_group), "roster.not_found", "")
            old.remove(user_id)
            changed.append(old)
        for group in filter(None, [new_group, "staff" if {"admin", "teacher"} & set(roles) else None]):
            roster = self.find(Roster, Roster.create_id(organization_id, group)) or Roster(
                organization_id=organization_id, group=group)
            roster.add(user_id)
            changed.append(roster)
        self.save(*changed)
        return membership

    def _admin_count(self, organization_id: uuid.UUID) -> int:
        staff = self.find(Roster, Roster.create_id(organization_id, "staff"))
        return sum(1 for u in (staff.user_ids if staff else [])
                   if (m := self.membership(organization_id, uuid.UUID(u))) is not None and m.has("admin"))

    @command
    def remove_member(self, actor_id: uuid.UUID, organization_id: uuid.UUID, user_id: uuid.UUID) -> None:
        self._require(organization_id, actor_id, "admin")
        membership = self.membership(organization_id, user_id)
        if membership is None:
            raise NotFound("member.not_found", "This person is not a member of the organization.")
        if membership.has("admin") and self._admin_count(organization_id) <= 1:
            raise Conflict("member.last_admin", "An organization keeps at least one admin.")
        membership.leave(actor_id)
        changed: list[Any] = [membership]
        for group in filter(None, ["staff", str(membership.class_id) if membership.class_id else None]):
            roster = self.find(Roster, Roster.create_id(organization_id, group))
            if roster is not None and str(user_id) in roster.user_ids:
                roster.remove(user_id)
                changed.append(roster)
        self.save(*changed)

    @command
    def assign_self(self, actor_id: uuid.UUID, organization_id: uuid.UUID, class_id: uuid.UUID,
                    subjects: list[str]) -> Membership:
        """SC-7: a teacher adds themself to a class they teach, with their subject(s)."""
        membership = self._require(organization_id, actor_id, "teacher")
        self._open_class(self._school_class(organization_id, class_id))
        cleaned = sorted({" ".join(s.split()) for s in subjects if s.strip()})
        if not cleaned or any(len(s) > 64 for s in cleaned):
            raise Invalid("teacher.subjects_required", "Name the subject(s) you teach in this class.")
        membership.assign(class_id, cleaned)
        self.save(membership)
        return membership

    # -- invite links (SC-5, SC-6, ID-4) -------------------------------------------------------------------
    def create_invite(self, actor_id: uuid.UUID, organization_id: uuid.UUID, role: str, class_id: uuid.UUID | None,
                      validity: str, max_uses: int | None, email_registration_allowed: bool,
                      now: datetime | None = None) -> tuple[InviteLink, str]:
        """Admins invite teachers and students; teachers invite students to classes (RO-3)."""
        now = now or self.clock()
        actor = self._require(organization_id, actor_id, "admin", "teacher")
        if role not in INVITE_ROLES:
            raise Invalid("invite.invalid_role", "An invite link is for teachers or students.")
        if role == "teacher" and not actor.has("admin"):
            raise Forbidden("organization.role_required", "Only admins invite teachers.", {"roles": ["admin"]})
        if not actor.has("admin") and class_id is not None and not actor.teaches(class_id):
            raise Forbidden("invite.not_your_class", "Teachers invite pupils to the classes they teach; add "
                            "yourself to this class first (SC-7).", {"class_id": str(class_id)})
        if validity not in VALIDITY_PRESETS:
            raise Invalid("invite.invalid_validity", f"Validity is one of {', '.join(VALIDITY_PRESETS)}.")
        if max_uses is not None and not 1 <= max_uses <= 10_000:
            raise Invalid("invite.invalid_max_uses", "At most 1 to 10000 uses, or no limit.")
        school_class = None
        if role == "student":
            if class_id is None:
                raise Invalid("invite.class_required", "A student invite names the class to join.")
            school_class = self._open_class(self._school_class(organization_id, class_id))
        elif class_id is not None:
            school_class = self._school_class(organization_id, class_id)
        if email_registration_allowed:
            grade = junior_grade(school_class.name) if school_class else None
            if role != "student" or grade is None or not 1 <= grade <= 4:
                raise Invalid("invite.email_for_juniors_only",
                              "E-mail registration is for students of grades 1 to 4 (ID-4).")
        delta = VALIDITY_PRESETS[validity]

        def create() -> InviteLink:
            invite = InviteLink(organization_id=organization_id, class_id=class_id, role=role,
                                expires_at=now + delta if delta else None, max_uses=max_uses,
                                email_registration_allowed=email_registration_allowed, created_by=actor_id)
            index = self.find(InviteIndex, InviteIndex.create_id(organization_id)) or InviteIndex(
                organization_id=organization_id)
            index.add(invite.id)
            self.save(invite, index)
            return invite

        invite = self.retrying(create)
        return invite, link_token("school-invite", invite.id)

    def invite_from_token(self, token: str) -> InviteLink:
        invite_id = link_id_from_token("school-invite", token)
        invite = self.find(InviteLink, invite_id) if invite_id else None
        if invite is None:
            raise NotFound("invite.not_found", "This invite link does not exist.")
        return invite

    def usable_invite(self, token: str, now: datetime | None = None) -> InviteLink:
        invite = self.invite_from_token(token)
        invite.check_usable(now or self.clock())
        self._invite_class_open(invite)
        return invite

    def _invite_class_open(self, invite: InviteLink) -> None:
        """An invite into a class that has graduated since it was made admits nobody (SC-4)."""
        if invite.class_id is not None:
            self._open_class(self._school_class(invite.organization_id, invite.class_id))

    def invites(self, actor_id: uuid.UUID, organization_id: uuid.UUID) -> list[tuple[InviteLink, str]]:
        self._require(organization_id, actor_id, "admin", "teacher")
        index = self.find(InviteIndex, InviteIndex.create_id(organization_id))
        found = [self.repository.get(uuid.UUID(i)) for i in (index.invite_ids if index else [])]
        actor = self.membership(organization_id, actor_id)
        if not actor.has("admin"):
            found = [i for i in found if i.created_by == actor_id]
        return [(i, link_token("school-invite", i.id)) for i in found]

    @command
    def revoke_invite(self, actor_id: uuid.UUID, invite_id: uuid.UUID) -> None:
        invite = self.get_as(InviteLink, invite_id, "invite.not_found", "This invite link does not exist.")
        actor = self._require(invite.organization_id, actor_id, "admin", "teacher")
        if not actor.has("admin") and invite.created_by != actor_id:
            raise Forbidden("invite.not_yours", "Teachers revoke only the links they made.")
        if not invite.revoked:
            invite.revoke(actor_id)
            self.save(invite)

    def join_by_invite(self, token: str, user_id: uuid.UUID, now: datetime | None = None) -> Membership:
        """SC-6: straight into the organization and class, with the link's role. The
        last use goes to one person only: two takers race on the link's version."""
        now = now or self.clock()
        invite_id = self.invite_from_token(token).id

        def join() -> Membership:
            invite = self.invite_from_token(token)
            self._invite_class_open(invite)
            invite.use(user_id, now)
            # A hidden join request does not stop a person invited by a link (SC-3).
            changed = self._join(invite.organization_id, user_id, invite.role, invite.class_id, "invite")
            self.save(invite, *changed)
            return changed[0]

        # A whole class opens one link at once: inside this process they take turns
        # (no lost races at all); across processes optimistic concurrency decides.
        return self.retrying(join, key=("invite", invite_id))

    # -- join requests (SC-2, SC-3) -----------------------------------------------------------------------
    def request_to_join(self, user_id: uuid.UUID, organization_id: uuid.UUID, message: str | None) -> JoinRequest:
        self.organization(organization_id)
        if self.membership(organization_id, user_id) is not None:
            raise Conflict("membership.already_member", "You are already a member.")

        def send() -> JoinRequest:
            request = self.find(JoinRequest, JoinRequest.create_id(organization_id, user_id))
            if request is None:
                request = JoinRequest(organization_id=organization_id, user_id=user_id, message=message)
            else:
                request.resend(message)
            queue = self.find(JoinRequestQueue, JoinRequestQueue.create_id(organization_id)) or JoinRequestQueue(
                organization_id=organization_id)
            queue.add(user_id)
            self.save(request, queue)
            return request

        return self.retrying(send)

    def join_requests(self, actor_id: uuid.UUID, organization_id: uuid.UUID) -> list[JoinRequest]:
        self._require(organization_id, actor_id, "admin")
        queue = self.find(JoinRequestQueue, JoinRequestQueue.create_id(organization_id))
        return [self.repository.get(JoinRequest.create_id(organization_id, uuid.UUID(u)))
                for u in (queue.pending if queue else [])]

    @command
    def accept_join_request(self, actor_id: uuid.UUID, organization_id: uuid.UUID, user_id: uuid.UUID, role: str,
                            class_id: uuid.UUID | None) -> Membership:
        """SC-3 "Add": the admin admits the person with a role and class."""
        self._require(organization_id, actor_id, "admin")
        if role not in ROLES:
            raise Invalid("member.invalid_roles", f"A role is one of {', '.join(ROLES)}.")
        if role in ("student", "parent"):
            if class_id is None:
                raise Invalid("member.class_required", "A student or parent belongs to a class.")
            self._open_class(self._school_class(organization_id, class_id))
        request = self.get_as(JoinRequest, JoinRequest.create_id(organization_id, user_id), "join_request.not_found",
                            "No such request.")
        request.accept(actor_id, role, class_id)
        queue = self.get_as(JoinRequestQueue, JoinRequestQueue.create_id(organization_id), "join_request.not_found",
                          "")
        queue.remove(user_id)
        changed = self._join(organization_id, user_id, role, class_id if role in ("student", "parent") else None,
                             "join_request")
        self.save(request, queue, *changed)
        return changed[0]

    @command
    def hide_join_request(self, actor_id: uuid.UUID, organization_id: uuid.UUID, user_id: uuid.UUID) -> None:
        """SC-3 "Hide": for good; the person can still be invited by a new link."""
        self._require(organization_id, actor_id, "admin")
        request = self.get_as(JoinRequest, JoinRequest.create_id(organization_id, user_id), "join_request.not_found",
                            "No such request.")
        request.hide(actor_id)
        queue = self.get_as(JoinRequestQueue, JoinRequestQueue.create_id(organization_id), "join_request.not_found",
                          "")
        queue.remove(user_id)
        self.save(request, queue)

    # -- materials (SC-10..SC-12) -------------------------------------------------------------------------
    def upload_allowance(self, actor_id: uuid.UUID, organization_id: uuid.UUID, purpose: str) -> dict[str, Any]:
        """Asked before a file's bytes are read (issue #12): refuses whoever may not upload
        a document or an image here, and says how large a file may be and what today's
        quotas leave (``bytes_left``, the ``scope`` that leaves the fewest)."""
        if purpose not in UPLOAD_LIMITS:
            raise Invalid("upload.invalid_purpose", f"Uploads here are one of: {', '.join(UPLOAD_LIMITS)}.")
        self._require(organization_id, actor_id, "admin", "teacher")
        left, scope = Quotas(self.find, actor_id, organization_id, self.today()).left()
        if left <= 0:
            raise quota_exceeded(scope, left)
        return {"max_bytes": UPLOAD_LIMITS[purpose](), "bytes_left": left, "scope": scope}

    def publish_document(self, actor_id: uuid.UUID, organization_id: uuid.UUID, title: str, file_name: str,
                         media_type: str, size: int, blob_key: str) -> Document:
        """SC-10: admins add school-wide materials, teachers upload theirs (RO-2, RO-3).
        ``media_type`` is what the content was sniffed to be; the name is cleaned before it is checked."""
        self._require(organization_id, actor_id, "admin", "teacher")
        file_name = clean_file_name(file_name)
        if media_type not in DOCUMENT_TYPES or is_executable(file_name, media_type):
            raise Invalid("document.type_not_allowed", "This kind of file cannot be published.",
                          {"media_type": media_type, "allowed": sorted(DOCUMENT_TYPES)})
        if not 0 < size <= document_max_bytes():
            raise Invalid("document.too_large", f"A document is at most {document_max_bytes()} bytes.",
                          {"size": size, "max_bytes": document_max_bytes()})
        if not title.strip() or len(title) > 200:
            raise Invalid("document.invalid_title", "A title of 1 to 200 characters.")

        def publish() -> Document:
            ledgers = Quotas(self.find, actor_id, organization_id, self.today()).charge(size)
            document = Document(organization_id=organization_id, title=title.strip(), file_name=file_name,
                                media_type=media_type, size=size, blob_key=blob_key, published_by=actor_id)
            self._save_listed(document, organization_id, "documents", *ledgers)
            return document

        return self.retrying(publish)

    def documents(self, actor_id: uuid.UUID, organization_id: uuid.UUID) -> list[Document]:
        self._member(organization_id, actor_id)
        index = self.find(MaterialsIndex, MaterialsIndex.create_id(organization_id, "documents"))
        found = [self.repository.get(uuid.UUID(d)) for d in (index.ids if index else [])]
        return [d for d in reversed(found) if not d.deleted]

    def document(self, actor_id: uuid.UUID, document_id: uuid.UUID) -> Document:
        """A document for download: members of its organization only."""
        document = self.get_as(Document, document_id, "document.not_found", "No such document.")
        if document.deleted:
            raise NotFound("document.not_found", "No such document.")
        self._member(document.organization_id, actor_id)
        return document

    def upload_image(self, actor_id: uuid.UUID, organization_id: uuid.UUID, file_name: str, media_type: str,
                     size: int, blob_key: str) -> Image:
        """An image for the organization's articles (a cover), by its teachers and admins:
        a PNG, JPEG, GIF or WebP by its content, within the size and today's quotas."""
        self._require(organization_id, actor_id, "admin", "teacher")
        if media_type not in IMAGE_TYPES:
            raise Invalid("image.type_not_allowed", "Images are PNG, JPEG, GIF or WebP.",
                          {"media_type": media_type, "allowed": sorted(IMAGE_TYPES)})
        if not 0 < size <= IMAGE_MAX_BYTES:
            raise Invalid("image.too_large", f"An image is at most {IMAGE_MAX_BYTES} bytes.",
                          {"size": size, "max_bytes": IMAGE_MAX_BYTES})

        def upload() -> Image:
            ledgers = Quotas(self.find, actor_id, organization_id, self.today()).charge(size)
            image = Image(organization_id=organization_id, uploaded_by=actor_id, file_name=clean_file_name(file_name),
                          media_type=media_type, size=size, blob_key=blob_key)
            self.save(image, *ledgers)
            return image

        return self.retrying(upload)

    def _image(self, organization_id: uuid.UUID, image_id: uuid.UUID | None) -> Image | None:
        """An image this organization was issued; any other id, another school's image
        included, is "no such image" (nothing is learned about it)."""
        if image_id is None:
            return None
        image = self.find(Image, image_id)
        if image is None or image.organization_id != organization_id:
            raise NotFound("image.not_found", "No such image in this organization: upload it here first.")
        return image

    def draft_article(self, actor_id: uuid.UUID, organization_id: uuid.UUID, title: str, html: str,
                      cover_image_id: uuid.UUID | None) -> Article:
        self._require(organization_id, actor_id, "admin", "teacher")
        if not title.strip() or len(title) > 200:
            raise Invalid("article.invalid_title", "A title of 1 to 200 characters.")
        html = sanitize_html(html)
        self._image(organization_id, cover_image_id)

        def draft() -> Article:
            article = Article(organization_id=organization_id, author_id=actor_id, title=title.strip(),
                              html=html, cover_image_id=cover_image_id)
            self._save_listed(article, organization_id, "articles")
            return article

        return self.retrying(draft)

    def _save_listed(self, material: Document | Article, organization_id: uuid.UUID, kind: str,
                     *others: Any) -> None:
        """Save a new document or article with its organization's list of them (one transaction)."""
        index = self.find(MaterialsIndex, MaterialsIndex.create_id(organization_id, kind)) or MaterialsIndex(
            organization_id=organization_id, kind=kind)
        index.add(material.id)
        self.save(material, index, *others)

    def _own_article(self, actor_id: uuid.UUID, article_id: uuid.UUID) -> Article:
        article = self.get_as(Article, article_id, "article.not_found", "No such article.")
        actor = self._member(article.organization_id, actor_id)
        if article.author_id != actor_id and not actor.has("admin"):
            raise Forbidden("article.not_yours", "Only its author or an admin can change this article.")
        return article

    @command
    def edit_article(self, actor_id: uuid.UUID, article_id: uuid.UUID, title: str, html: str,
                     cover_image_id: uuid.UUID | None) -> Article:
        article = self._own_article(actor_id, article_id)
        self._image(article.organization_id, cover_image_id)
        article.edit(title.strip(), sanitize_html(html), cover_image_id)
        self.save(article)
        return article

    @command
    def publish_article(self, actor_id: uuid.UUID, article_id: uuid.UUID) -> Article:
        article = self._own_article(actor_id, article_id)
        if article.published_at is not None:
            raise Conflict("article.already_published", "This article is already published.")
        article.publish(utcnow())
        self.save(article)
        return article

    def articles(self, actor_id: uuid.UUID, organization_id: uuid.UUID) -> list[Article]:
        """Members read published articles; authors and admins also see drafts."""
        actor = self._member(organization_id, actor_id)
        index = self.find(MaterialsIndex, MaterialsIndex.create_id(organization_id, "articles"))
        found = [self.repository.get(uuid.UUID(a)) for a in (index.ids if index else [])]
        return [a for a in reversed(found)
                if a.published_at is not None or a.author_id == actor_id or actor.has("admin")]

    def article(self, actor_id: uuid.UUID, article_id: uuid.UUID) -> Article:
        article = self.get_as(Article, article_id, "article.not_found", "No such article.")
        actor = self._member(article.organization_id, actor_id)
        if article.published_at is None and article.author_id != actor_id and not actor.has("admin"):
            raise NotFound("article.not_found", "No such article.")
        return article

    def article_cover(self, actor_id: uuid.UUID, article_id: uuid.UUID) -> Image:
        """The cover of an article the actor may read: the image school issued for it."""
        article = self.article(actor_id, article_id)
        if article.cover_image_id is None:
            raise NotFound("article.no_cover", "This article has no cover.")
        return self._image(article.organization_id, article.cover_image_id)

    def create_channel(self, actor_id: uuid.UUID, organization_id: uuid.UUID, name: str) -> Channel:
        self._require(organization_id, actor_id, "admin")
        if not name.strip() or len(name) > 80:
            raise Invalid("channel.invalid_name", "A name of 1 to 80 characters.")

        def create() -> Channel:
            organization = self.organization(organization_id)
            channel = Channel(organization_id=organization_id, name=name.strip(), created_by=actor_id)
            organization.add_channel(channel.id)
            self.save(channel, organization)
            return channel

        return self.retrying(create)

    def channels(self, actor_id: uuid.UUID, organization_id: uuid.UUID) -> list[Channel]:
        self._member(organization_id, actor_id)
        return [self.repository.get(uuid.UUID(c)) for c in self.organization(organization_id).channel_ids]

    @command
    def post(self, actor_id: uuid.UUID, channel_id: uuid.UUID, text: str) -> dict:
        """SC-12: admins post; members read."""
        channel = self.get_as(Channel, channel_id, "channel.not_found", "No such channel.")
        self._require(channel.organization_id, actor_id, "admin")
        if not text.strip() or len(text) > 10_000:
            raise Invalid("channel.invalid_post", "A post of 1 to 10000 characters.")
        post_id = uuid.uuid4()
        channel.post(post_id, actor_id, text.strip(), utcnow())
        self.save(channel)
        return channel.posts[-1]

    def posts(self, actor_id: uuid.UUID, channel_id: uuid.UUID, cursor: str | None, limit: int
              ) -> tuple[list[dict], str | None]:
        channel = self.get_as(Channel, channel_id, "channel.not_found", "No such channel.")
        self._member(channel.organization_id, actor_id)
        newest_first = list(reversed(channel.posts))
        after = decode_cursor(cursor)
        if after is not None and not after.isdigit():
            raise Invalid("paging.invalid_cursor", "This cursor is not one a page gave; start from the first page.")
        start = int(after) if after is not None else 0
        chunk = newest_first[start:start + limit]
        return chunk, (encode_cursor(str(start + limit)) if start + limit < len(newest_first) else None)

    # -- the teacher's desktop (SC-13) ----------------------------------------------------------------------
    def dashboard(self, actor_id: uuid.UUID) -> dict:
        """The classes a teacher teaches (with subjects) in every organization, the
        lessons or calls under way (the calls issue fills them) and recent chats
        (messaging's, when it exists)."""
        classes = []
        for organization, membership in self.my_organizations(actor_id):
            if not membership.has("teacher"):
                continue
            for class_id, subjects in membership.subjects.items():
                school_class: SchoolClass = self.repository.get(uuid.UUID(class_id))
                classes.append({"organization_id": organization.id, "organization_name": organization.name,
                                "class_id": school_class.id, "class_name": school_class.name, "subjects": subjects,
                                "graduated": self.class_graduated(school_class)})
        return {"classes": sorted(classes, key=lambda c: (c["organization_name"], c["class_name"])),
                "lessons_under_way": [], "recent_chats": []}
