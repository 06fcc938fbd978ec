"""Members (RO-*, SC-7..SC-9): who belongs to an organization, with which roles and classes; admins appoint,
change and remove them, teachers add themselves to the classes they teach."""

from __future__ import annotations

import uuid
from typing import Any

from school.application.base import SchoolBase
from school.domain import UNPLACED, AdminChanges, Membership, Organization, PersonOrganizations, Roster
from school.readmodel import members_page
from shared.contracts.api.school import ROLES, ChangeMember
from shared.errors import Conflict, Forbidden, Invalid, NotFound
from shared.paging import decode_cursor, encode_cursor
from shared.store import command


class Members(SchoolBase):
    def members(self, actor_id: uuid.UUID, organization_id: uuid.UUID, class_id: uuid.UUID | None = None,
                cursor: str | None = None, limit: int = 50) -> tuple[list[dict], str | None]:
        """The members list. Admins and teachers see everyone with roles and classes;
        a student or parent sees the staff and their own class (names only)."""
        actor = self._member(organization_id, actor_id)
        staff_view = actor.has("admin") or actor.has("teacher")
        groups: list[str] | None
        if staff_view:  # everyone: the staff, the unplaced and every class's roster, i.e. any of its rosters
            groups = None if class_id is None else [str(class_id)]
        else:  # their own class, and a parent each class a child of theirs studies in (PL-7)
            own = [g for g in actor.groups if g not in ("staff", UNPLACED)]
            if class_id is not None and str(class_id) not in own:
                raise Forbidden("organization.class_only", "You can see the members of your own class only.")
            groups = ["staff", *sorted(own)] if class_id is None else [str(class_id)]
        # Paged in the read model (school.readmodel), by last name then id, the rosters' active members.
        after = decode_cursor(cursor)
        with self.read_model.reading() as db:
            items, last = members_page(db, organization_id, groups, after, limit, staff_view)
        return items, (encode_cursor(last) if last is not None else None)

    def my_organizations(self, user_id: uuid.UUID) -> list[tuple[Organization, Membership]]:
        orgs = self.find(PersonOrganizations, PersonOrganizations.create_id(user_id))
        found = []
        for organization_id in orgs.organization_ids if orgs else []:
            membership = self.membership(uuid.UUID(organization_id), user_id)
            if membership is not None:
                found.append((self.organization(uuid.UUID(organization_id)), membership))
        return found

    def membership_state(self, organization_id: uuid.UUID, user_id: uuid.UUID) -> dict[str, Any]:
        """A person's membership as stored now, with its version: what a consumer of its events applies when it
        finds one of them missing, still on its way (the events' ``sequence``: shared/contracts/envelope.py).
        Version 0: never a member. Roles, class and subjects as the membership's events publish them;
        ``left_version``: the version of their last leaving (0: never), whose effects a rejoin does not undo."""
        found = self.find(Membership, Membership.create_id(organization_id, user_id))
        left_version = getattr(found, "left_version", 0)  # the last time they left: its effects outlive a rejoin
        if found is None or not found.active:
            return {"version": found.version if found else 0, "active": False, "roles": [], "class_id": None,
                    "parent_classes": [], "subjects": {}, "left_version": left_version}
        return {"version": found.version, "active": True, "roles": list(found.roles),
                "class_id": str(found.class_id) if found.class_id else None,
                "parent_classes": found.parent_classes, "subjects": found.taught, "left_version": left_version}

    def _existing_member(self, organization_id: uuid.UUID, user_id: uuid.UUID) -> Membership:
        """The membership an admin acts on; member.not_found when the person is not one."""
        membership = self.membership(organization_id, user_id)
        if membership is None:
            raise NotFound("member.not_found", "This person is not a member of the organization.")
        return membership

    @command
    def appoint_admin(self, actor_id: uuid.UUID, organization_id: uuid.UUID, user_id: uuid.UUID) -> Membership:
        """RO-7: an admin makes an existing member an admin; any number of admins."""
        self._require(organization_id, actor_id, "admin")
        membership = self._existing_member(organization_id, user_id)
        if membership.has("admin"):
            raise Conflict("member.already_admin", "This member is already an admin.")
        before = membership.groups
        membership.add_role("admin", None, "appointed")
        pending: dict[uuid.UUID, Any] = {membership.id: membership}
        self._regroup(membership, before, pending)
        self.save(*pending.values())
        return membership

    @command
    def change_member(self, actor_id: uuid.UUID, command: ChangeMember) -> Membership:
        """SC-8, SC-9: an admin corrects a member's role(s) and class; never into a class that has graduated
        (SC-4; a member already in it may keep it). A pupil's parents follow them (RO-5)."""
        organization_id, user_id = command.organization_id, command.user_id
        roles, class_id = command.roles, command.class_id
        self._require(organization_id, actor_id, "admin")
        if not roles or any(r not in ROLES for r in roles):
            raise Invalid("member.invalid_roles", f"Roles are some of {', '.join(ROLES)}.")
        if ("student" in roles or "parent" in roles) and class_id is None:
            raise Invalid("member.class_required", "A student or parent belongs to a class.")
        school_class = self._school_class(organization_id, class_id) if class_id is not None else None
        membership = self._existing_member(organization_id, user_id)
        if school_class is not None and class_id != membership.class_id:
            self._open_class(school_class)
        revoking = membership.has("admin") and "admin" not in roles
        admin_changes = self._keeping_an_admin(organization_id) if revoking else None
        before, was_student = membership.groups, membership.has("student")
        membership.change(sorted(set(roles), key=ROLES.index), class_id, actor_id)
        pending: dict[uuid.UUID, Any] = {membership.id: membership}
        self._regroup(membership, before, pending, tidy=True)
        # a parent through children here is one in their classes (PL-7): the admin's class, if among them
        self._follow_children(organization_id, user_id, actor_id, pending, keep_role=True)
        if was_student or "student" in roles:
            self._parents_follow(organization_id, user_id, actor_id, pending)
        if admin_changes is not None:
            admin_changes.revoked(user_id, actor_id)
            pending[admin_changes.id] = admin_changes
        for role in roles:  # what an admin sets is the school's: no journal takes it back (EJ-2)
            self._school_keeps(organization_id, user_id, role, pending)
        self.save(*pending.values())
        return membership

    def _keeping_an_admin(self, organization_id: uuid.UUID) -> AdminChanges:
        """SC-9's last-admin rule, for a command about to take an admin's rights away: member.last_admin unless
        another admin stays. The count is safe against another command taking another admin's rights at the same
        moment because both then write the organization's ``AdminChanges`` (the caller records its change on the
        record answered), so the later save conflicts, and that command runs again and counts again. The record is
        read *before* the count: read after it, a command that counted before the other saved could still read
        the other's saved record, and its own save would then conflict with nothing."""
        changes = self.find(AdminChanges, AdminChanges.create_id(organization_id)) or AdminChanges(
            organization_id=organization_id)
        if self._admin_count(organization_id) <= 1:
            raise Conflict("member.last_admin", "An organization keeps at least one admin.")
        return changes

    def _admin_count(self, organization_id: uuid.UUID) -> int:
        staff = self.find(Roster, Roster.create_id(organization_id, "staff"))
        return sum(1 for u in (staff.user_ids if staff else [])
                   if (m := self.membership(organization_id, uuid.UUID(u))) is not None and m.has("admin"))

    @command
    def remove_member(self, actor_id: uuid.UUID, organization_id: uuid.UUID, user_id: uuid.UUID) -> None:
        self._require(organization_id, actor_id, "admin")
        membership = self._existing_member(organization_id, user_id)
        admin_changes = self._keeping_an_admin(organization_id) if membership.has("admin") else None
        was_student, before = membership.has("student"), membership.groups
        membership.leave(actor_id)
        pending: dict[uuid.UUID, Any] = {membership.id: membership}
        if admin_changes is not None:
            admin_changes.revoked(user_id, actor_id)
            pending[admin_changes.id] = admin_changes
        self._regroup(membership, before, pending, tidy=True)
        if was_student:  # a parent whose only child here has gone is no longer a parent here (RO-5)
            self._parents_follow(organization_id, user_id, actor_id, pending)
        self.save(*pending.values())

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
