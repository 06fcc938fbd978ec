"""Invite links (SC-5, SC-6, ID-4): admins invite teachers and students, teachers invite pupils to the classes
they teach; a link admits people straight into the organization and class until it expires, runs out or is
revoked."""

from __future__ import annotations

import re
import uuid
from datetime import datetime

from school import lists
from school.application.base import SchoolBase
from school.domain import InviteIndex, InviteLink, Membership
from shared.contracts.api.school import INVITE_ROLES, VALIDITY_PRESETS, CreateInvite
from shared.errors import Forbidden, Invalid, NotFound
from shared.links import link_id_from_token, link_token
from shared.store import command


def junior_grade(class_name: str) -> int | None:
    """The grade a class name starts with ("3Б" -> 3), if it does."""
    found = re.match(r"\s*(\d{1,2})", class_name)
    return int(found.group(1)) if found else None


class Invites(SchoolBase):
    def create_invite(self, actor_id: uuid.UUID, command: CreateInvite, now: datetime | None = None
                      ) -> tuple[InviteLink, str]:
        """Admins invite teachers and students; teachers invite students to classes (RO-3)."""
        organization_id, role, class_id = command.organization_id, command.role, command.class_id
        validity, max_uses = command.validity, command.max_uses
        email_registration_allowed = command.email_registration_allowed
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
        return self.invites_page(actor_id, organization_id, None, None)[0]

    def invites_page(self, actor_id: uuid.UUID, organization_id: uuid.UUID, cursor: str | None, limit: int | None
                     ) -> tuple[list[tuple[InviteLink, str]], str | None]:
        """The organization's links in the order they were made (admins: all; teachers: their own), from the
        read model (``school.lists``); ``limit`` None: all of them."""
        actor = self._require(organization_id, actor_id, "admin", "teacher")
        mine = {} if actor.has("admin") else {"where": "i.owner = ?", "params": (str(actor_id),)}
        found, next_cursor = self._entries("invite", organization_id, cursor, limit, lists.invite, **mine)
        return [(i, link_token("school-invite", i.id)) for i in found], next_cursor

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
