"""Parent linking (PL-1..PL-8): the student's link, what a parent sees of it, the parent's confirmation
with consent, unlinking, revoking the link, and the family's lists.

An unlink revokes the child's link (an outside audit: a stranger who had taken the QR code and was removed by the
school's admin came straight back with the same token, live for its 7 days, once the unlink freed a place, and
the child kept being shown that token). Two locks, both needed: the unlink revokes the live invite in its own save
(the next one asked for is new), and it ends the child's invite generation kept in ParentLinks, which a
confirmation reads and writes (``ParentLinks.check_invite``): a confirmation that read the invite live before the
unlink was saved either reads the new generation or conflicts on its save and runs again against it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from identity.application.base import IdentityBase, ParentInviteView
from identity.domain import (
    PARENT_INVITE_TTL,
    Family,
    ParentInvite,
    ParentInviteIndex,
    ParentLinks,
    self_link_error,
    validate_profile,
)
from identity.privacy import Relation, view
from shared.clock import utcnow
from shared.consistency import AskOwner, confirmed
from shared.contracts.api.identity import Profile
from shared.errors import Forbidden, Gone, Invalid, NotFound
from shared.links import link_id_from_token, link_token
from shared.store import command


class ParentLinking(IdentityBase):
    @staticmethod
    def _invite_token(invite_id: uuid.UUID) -> str:
        return link_token("parent-invite", invite_id)

    def _invite_from_token(self, token: str) -> ParentInvite:
        invite_id = link_id_from_token("parent-invite", token)
        invite = self.find(ParentInvite, invite_id) if invite_id else None
        if invite is None:
            raise NotFound("parent_link.not_found", "This parent link does not exist.")
        return invite

    @command
    def parent_invite(self, student_id: uuid.UUID, now: datetime | None = None,
                      school_says_student: AskOwner | None = None) -> ParentInviteView:
        """The student's parent link: the live one again, or a new one (PL-1, PL-2), with
        how many parents it has linked (PL-5: at two it is used up). Right after joining,
        school's event may not be here yet: school itself is asked (read-your-writes)."""
        now = now or utcnow()
        membership = self.membership(student_id)
        if not confirmed(membership is not None and membership.is_student, school_says_student):
            raise Forbidden("parent_link.students_only", "Only a student can invite their parents.")
        links = self.find(ParentLinks, ParentLinks.create_id(student_id))
        linked = len(links.parents) if links else 0
        index = self.find(ParentInviteIndex, ParentInviteIndex.create_id(student_id))
        if index is not None:
            current: ParentInvite = self.repository.get(index.invite_id)
            if current.live(now) and (links is None or links.issued_now(current)):
                return ParentInviteView(current, self._invite_token(current.id), linked)
        invite = ParentInvite(child_id=student_id, expires_at=now + PARENT_INVITE_TTL,
                              generation=links.invite_generation if links else 0)
        if index is None:
            index = ParentInviteIndex(child_id=student_id, invite_id=invite.id)
        else:
            index.replace(invite.id)
        self.save(invite, index)
        return ParentInviteView(invite, self._invite_token(invite.id), linked)

    def open_parent_invite(self, token: str, viewer_id: uuid.UUID, now: datetime | None = None) -> dict[str, Any]:
        """What a parent sees on opening the link: the child's data to check (PL-3)."""
        invite, links = self._live_invite(token, now or utcnow())
        links.check_can_link(viewer_id)
        child = self.get_account(invite.child_id)
        return {**view(child, Relation.PARENT), "parents_linked": len(links.parents),
                "expires_at": invite.expires_at}

    def preview_parent_invite(self, token: str, now: datetime | None = None) -> dict[str, Any]:
        """What the link shows before anyone signs in (PL-3): enough for a parent to know
        it is their child's (first name, last initial, the schools), nothing more; the
        child's data to check comes once they sign in with their own phone."""
        invite, _ = self._live_invite(token, now or utcnow())
        child = self.get_account(invite.child_id)
        membership = self.membership(invite.child_id)
        return {"first_name": child.first_name, "last_initial": (child.last_name or "")[:1] or None,
                "organization_ids": sorted(membership.organizations_with("student")) if membership else [],
                "expires_at": invite.expires_at}

    def _live_invite(self, token: str, now: datetime) -> tuple[ParentInvite, ParentLinks]:
        """The token's invite, if it still links anyone, and the child's parents as read to decide so (new and
        unsaved when none has linked yet): a confirmation writes that same ParentLinks."""
        invite = self._invite_from_token(token)
        links = self.find(ParentLinks, ParentLinks.create_id(invite.child_id)) or ParentLinks(
            child_id=invite.child_id)
        links.check_invite(invite)
        if not invite.live(now):
            raise Gone("parent_link.expired", "This parent link has expired; ask the student for a new one.")
        return invite, links

    def confirm_parent_link(self, token: str, parent_id: uuid.UUID, consent: bool,
                            child_profile: Profile | None = None, now: datetime | None = None) -> uuid.UUID:
        """The parent confirms the child's registration (PL-3, PL-4); at most two (PL-5)."""
        now = now or utcnow()
        if not consent:
            raise Invalid("parent_link.consent_required",
                          "Tick \"I consent to my child using the platform\" to continue.")
        if child_profile is not None:
            validate_profile(child_profile.last_name, child_profile.first_name, child_profile.patronymic,
                             child_profile.birth_date, child_profile.sex, now.date())

        def confirm() -> uuid.UUID:
            invite, links = self._live_invite(token, now)
            child_id = invite.child_id
            if parent_id == child_id:
                raise self_link_error()
            link_id = links.link(parent_id, consent_given_at=now, at=now)
            family = self.find(Family, Family.create_id(parent_id)) or Family(user_id=parent_id)
            family.add_child(child_id)
            changed: list[Any] = [links, family]
            if child_profile is not None:
                child = self.get_account(child_id)
                child.update_profile(child_profile.last_name, child_profile.first_name, child_profile.patronymic,
                                     child_profile.birth_date, child_profile.sex, parent_id)
                changed.append(child)
            self.save(*changed)
            return link_id

        return self.retrying(confirm)

    @command
    def unlink_parent(self, actor_id: uuid.UUID, child_id: uuid.UUID, parent_id: uuid.UUID,
                      now: datetime | None = None) -> None:
        """By the parent, or by an admin of a school where the child studies. The child's link is revoked in the
        same save (PL-5: the freed place is not the old token's to take; the child is shown a new one): whoever
        was removed may have been a stranger holding the QR code."""
        now = now or utcnow()
        links = self.find(ParentLinks, ParentLinks.create_id(child_id))
        if links is None or str(parent_id) not in links.parents:
            raise NotFound("parent_link.not_found", "This person is not linked as a parent of this child.")
        if actor_id != parent_id and not self._is_admin_of_childs_school(actor_id, child_id):
            raise Forbidden("parent_link.unlink_forbidden",
                            "Only the parent or an admin of the child's school can remove this link.")
        family = self.get_as(Family, Family.create_id(parent_id), "parent_link.not_found", "")
        links.unlink(parent_id, actor_id, now)  # ends the invite generation: no older token links again
        family.remove_child(child_id)
        self.save(links, family, *self._revoke_live_invite(child_id, actor_id, now))

    @command
    def revoke_parent_invite(self, actor_id: uuid.UUID, child_id: uuid.UUID, now: datetime | None = None) -> None:
        """The child's link stops working and the next one shown is new (PL-2): a QR code seen by the wrong
        person. The child may (the link is theirs, PL-1), and so may whoever may manage the child's links: a
        linked parent, an admin of the child's school. Nobody else: it would only be a nuisance to the family.
        A child who never had a link has nothing to revoke."""
        now = now or utcnow()
        links = self.find(ParentLinks, ParentLinks.create_id(child_id))
        if actor_id != child_id and not (links is not None and str(actor_id) in links.parents) \
                and not self._is_admin_of_childs_school(actor_id, child_id):
            raise Forbidden("parent_link.revoke_forbidden",
                            "Only the student, a parent of theirs or an admin of their school can revoke this link.")
        if self.find(ParentInviteIndex, ParentInviteIndex.create_id(child_id)) is None:
            return
        links = links or ParentLinks(child_id=child_id)
        links.revoke_invite(actor_id, now)
        self.save(links, *self._revoke_live_invite(child_id, actor_id, now))

    def _revoke_live_invite(self, child_id: uuid.UUID, actor_id: uuid.UUID, now: datetime) -> list[ParentInvite]:
        """The child's live invite, revoked (to save with the change that revokes it). Only the index's invite can
        be live: a new one replaces it only once it is not (``parent_invite``)."""
        index = self.find(ParentInviteIndex, ParentInviteIndex.create_id(child_id))
        invite = self.find(ParentInvite, index.invite_id) if index else None
        if invite is None or not invite.live(now):
            return []
        invite.revoke(actor_id, now)
        return [invite]

    def _is_admin_of_childs_school(self, actor_id: uuid.UUID, child_id: uuid.UUID) -> bool:
        actor, child = self.membership(actor_id), self.membership(child_id)
        if actor is None or child is None:
            return False
        return bool(actor.organizations_with("admin") & child.organizations_with("student"))

    def children(self, user_id: uuid.UUID) -> list[dict[str, Any]]:
        kids, _ = self.family_of(user_id)
        return [view(self.get_account(uuid.UUID(c)), Relation.PARENT) for c in sorted(kids)]

    def parents(self, user_id: uuid.UUID) -> list[dict[str, Any]]:
        _, parents = self.family_of(user_id)
        return [view(self.get_account(uuid.UUID(p)), Relation.CHILD) for p in sorted(parents)]
