"""People as identity and the e-journal bridge report them (``school.handlers`` reads their events): who they
are, whose phone is whose (ID-6, EJ-2, SC-1; parents and children: ``parents``). Each method applies one event
once (``@once_per_event``, ``process_once`` with the event's id)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from school.application.base import CONSOLE, Actor, SchoolBase
from school.domain import JournalGrants, Membership, Organization, Person, PhoneOwner
from shared.clock import utcnow
from shared.errors import Forbidden, NotFound
from shared.store import command, once_per_event


class People(SchoolBase):
    @once_per_event
    @command
    def record_person(self, *, event_id: str, user_id: uuid.UUID, registered_via: str, registered_at: datetime,
                      last_name: str | None, first_name: str | None, phone: str | None) -> bool:
        """UserRegistered: know the person and their phone; a phone an approved
        application named becomes that organization's first admin (SC-1). A person a profile edit made first
        (``rename_person``) gets the registration and keeps the edit's name, which is newer (``Person.register``)."""
        changed: list[Any] = []
        person = self.find(Person, user_id)
        if person is None:
            changed.append(Person(user_id=user_id, registered_via=registered_via, registered_at=registered_at,
                                  last_name=last_name, first_name=first_name, phone=phone))
        elif not person.registered:
            person.register(registered_via, registered_at, phone)
            changed.append(person)
        if phone:
            owner = self.find(PhoneOwner, PhoneOwner.create_id(phone)) or PhoneOwner(phone=phone)
            owner.own(user_id)
            pending: dict[uuid.UUID, Any] = {}
            for organization_id in owner.awaiting_admin:
                self._join(uuid.UUID(organization_id), user_id, "admin", None, "application", pending)
            changed += pending.values()
            if owner.awaiting_admin:
                owner.admin_arrived()
            changed.append(owner)
        return self.process_once(event_id, *changed)

    @once_per_event
    @command
    def rename_person(self, *, event_id: str, user_id: uuid.UUID, last_name: str, first_name: str,
                      sequence: int | None = None) -> bool:
        """ProfileUpdated: the name as of the account's version ``sequence``. Before the person's UserRegistered it
        makes the person, with no registration yet: waiting for it (NotYet) dead-lettered the edit when that queue
        lagged past the retries, and the person stayed nameless in the members lists (SC-8)."""
        person = self.find(Person, user_id)
        if person is None:
            person = Person(user_id=user_id, registered_via=None, registered_at=None, last_name=None,
                            first_name=None)
        elif person.name_outdated(sequence):
            return self.process_once(event_id)
        person.rename(last_name, first_name, sequence)
        return self.process_once(event_id, person)

    @once_per_event
    def hand_phone_over(self, *, event_id: str, user_id: uuid.UUID, new_user_id: uuid.UUID) -> bool:
        """ID-6: the number now belongs to the new account."""
        changed = []
        for owner in self._owners_of(user_id):
            owner.own(new_user_id)
            changed.append(owner)
        return self.process_once(event_id, *changed)

    def _owners_of(self, user_id: uuid.UUID) -> Iterable[PhoneOwner]:
        # The phone is not in the event (privacy); it is in the stream of UserRegistered we kept.
        person = self.find(Person, user_id)
        phone = getattr(person, "phone", None)
        owner = self.find(PhoneOwner, PhoneOwner.create_id(phone)) if phone else None
        return [owner] if owner is not None and owner.user_id == user_id else []

    @once_per_event
    def join_from_journal(self, *, event_id: str, user_id: uuid.UUID, role: str, organization_ids: list[uuid.UUID],
                          provider_id: uuid.UUID | None = None, at: datetime | None = None) -> bool:
        """EJ-2: a person linked to an e-journal belongs to the organizations their journal school is
        bound to, with the journal's role (a pupil's class stays the journal's until an admin sets one, SC-8).
        ``organization_ids`` is the whole set now: where this journal gave the role and the school is no longer in
        it (the account unlinked, another account is that person now), the role goes (``JournalGrants``)."""
        pending: dict[uuid.UUID, Any] = {}
        grants = self.find(JournalGrants, JournalGrants.create_id(user_id)) if provider_id else None
        if grants is not None and at is not None and grants.stale(provider_id, at):
            return self.process_once(event_id)  # an older report than the last applied
        before = grants.of(provider_id) if grants is not None else {}
        given: dict[str, str] = {}
        for organization_id in organization_ids:
            if self.find(Organization, organization_id) is None:
                continue  # bound to an organization that does not exist: nothing to join
            membership = self.membership(organization_id, user_id, pending)
            if membership is None or not membership.has(role):
                self._join(organization_id, user_id, role, None, "ejournal", pending)
                given[str(organization_id)] = role
            elif before.get(str(organization_id)) == role or (
                    grants is not None and grants.gives(str(organization_id), role, besides=provider_id)):
                given[str(organization_id)] = role  # a journal's role (not the school's): this one's too now
        for organization_id, gave in before.items():
            if given.get(organization_id) != gave and not (grants and grants.gives(organization_id, gave,
                                                                                    provider_id)):
                self._take_back(uuid.UUID(organization_id), user_id, gave, pending)
        if provider_id is not None:
            grants = grants or JournalGrants(user_id=user_id)
            grants.report(provider_id, given, at or utcnow())
            pending[grants.id] = grants
        return self.process_once(event_id, *pending.values())

    def _take_back(self, organization_id: uuid.UUID, user_id: uuid.UUID, role: str,
                   pending: dict[uuid.UUID, Any]) -> None:
        """A role a journal gave, taken back with it (EJ-2): the person's other roles there stay; with none left
        they leave; a pupil's parents follow (RO-5)."""
        membership = self.membership(organization_id, user_id, pending)
        if membership is None or not membership.has(role):
            return
        if role == "parent" and self._children_studying(organization_id, user_id, pending):
            return  # a parent here through a linked child too (PL-4): that holds without the journal
        roles, before = [r for r in membership.roles if r != role], membership.groups
        class_id = membership.class_id if {"student", "parent"} & set(roles) else None
        if roles:
            membership.change(roles, class_id, user_id, membership.parent_classes if "parent" in roles else None)
        else:
            membership.leave(None)
        pending[membership.id] = membership
        self._regroup(membership, before, pending)
        if role == "student":
            self._follow_children(organization_id, user_id, user_id, pending, keep_role=True)  # a parent here too
            self._parents_follow(organization_id, user_id, user_id, pending)

    def get_person(self, user_id: uuid.UUID) -> Person:
        """The person once registered: one a profile edit made first has no registration to show yet."""
        person = self.find(Person, user_id)
        if person is None or not person.registered:
            raise NotFound("person.not_found", "School does not know this person (yet).")
        return person

    @staticmethod
    def _console_only(actor: Actor) -> None:
        if actor is not CONSOLE:
            raise Forbidden("operator.required", "Only the operator's console can do this.")

    def members_to_reconcile(self, actor: Actor) -> list[tuple[uuid.UUID, uuid.UUID]]:
        """Every membership (organization, person), from the members' read model: for the console's
        ``reconcile-members``."""
        self._console_only(actor)
        with self.read_model.reading() as db:
            rows = db.rows("SELECT organization_id, user_id FROM {members} ORDER BY organization_id, user_id")
        return [(uuid.UUID(r["organization_id"]), uuid.UUID(r["user_id"])) for r in rows]

    @command
    def reconcile_member(self, actor: Actor, organization_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        """A membership made what this release's rules say, by the console once after upgrading to it: a parent
        through their linked children is a parent in each class a child of theirs studies in (RO-5, PL-7; a
        parent of siblings in two classes had the first one only), and the person is in the rosters of their
        ``Membership.groups`` and no other (older code left a teacher made a pupil in the staff's). True if it
        changed anything."""
        self._console_only(actor)
        member = self.find(Membership, Membership.create_id(organization_id, user_id))
        if member is None:
            return False
        pending: dict[uuid.UUID, Any] = {}
        self._follow_children(organization_id, user_id, user_id, pending, keep_role=True)
        member = pending.get(member.id, member)
        with self.read_model.reading() as db:
            listed = {r["grp"] for r in db.rows("SELECT grp FROM {roster_members} WHERE organization_id = ? AND "
                                                "user_id = ?", (str(organization_id), str(user_id)))}
        self._regroup(member, listed, pending, tidy=True)
        if pending:
            self.save(*pending.values())
        return bool(pending)
