"""What identity learns of a person from other services' events: their roles per organization from school (PL-1:
only a student invites parents; an admin of the child's school may unlink a parent; ID-7: who shares an
organization) and their e-journal links from the bridge (EJ-2: a teacher's link confirms the profile).

Each event type comes through its own queue, so they arrive out of order: every report carries its time (school's
``joined_at`` / ``changed_at`` / ``left_at``, the bridge's ``linked_at`` / ``unlinked_at``) and one older than the
newest applied changes nothing, so a late event never brings an old role or a badge back. Each is applied once
(``@once_per_event``, ``process_once`` with the event's id)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from identity.application.base import IdentityBase
from identity.domain import Account, Membership
from shared.store import once_per_event


class Memberships(IdentityBase):
    # -- school: MemberJoined, MemberRoleChanged, MemberLeft -------------------------------------------------------
    def _report_membership(self, user_id: Any, organization_id: Any, change: Any, at: datetime | None,
                           event_id: str) -> bool:
        """``change(membership)`` unless ``at`` is older than the newest report applied for that organization."""

        def apply() -> bool:
            membership = self.find(Membership, Membership.create_id(user_id)) or Membership(user_id=user_id)
            if membership.is_stale(organization_id, at):
                return self.process_once(event_id)
            change(membership)
            return self.process_once(event_id, membership)

        return self.retrying(apply)

    @once_per_event
    def add_membership(self, user_id: Any, organization_id: Any, role: str, class_id: Any,
                       roles: list[str] | None = None, at: datetime | None = None, *, event_id: str) -> bool:
        """school's MemberJoined: the person's role in an organization; ``roles``, when given, all they hold there
        now."""

        def change(membership: Membership) -> None:
            if roles:
                membership.set_roles(organization_id, roles, class_id, at)
            else:
                membership.add_role(organization_id, role, class_id, at)

        return self._report_membership(user_id, organization_id, change, at, event_id)

    @once_per_event
    def change_membership(self, user_id: Any, organization_id: Any, roles: list[str], class_id: Any,
                          at: datetime | None, *, event_id: str) -> bool:
        """school's MemberRoleChanged (SC-9): all the person's roles there now. A student made a teacher no longer
        invites parents (PL-1); an admin made a teacher no longer unlinks them."""
        return self._report_membership(user_id, organization_id,
                                       lambda membership: membership.set_roles(organization_id, roles, class_id, at),
                                       at, event_id)

    @once_per_event
    def end_membership(self, user_id: Any, organization_id: Any, at: datetime | None = None, *,
                       event_id: str) -> bool:
        """school's MemberLeft: the person no longer shares that organization with anyone (its time is kept, so a
        late join or role change from before it is not applied)."""
        return self._report_membership(user_id, organization_id,
                                       lambda membership: membership.leave(organization_id, at), at, event_id)

    # -- the e-journal bridge: EjournalAccountLinked, EjournalAccountUnlinked (EJ-2) --------------------------------
    def _report_journal_link(self, user_id: Any, provider_id: Any, at: datetime | None, linked: bool,
                             teacher: bool, region: str | None, event_id: str) -> bool:
        def apply() -> bool:
            account = self.find(Account, user_id)
            if account is None or account.journal_report_is_stale(provider_id, at, linked):
                return self.process_once(event_id)
            if linked and teacher:
                account.confirm_teacher(provider_id, region, at)
            else:
                account.journal_link_changed(provider_id, linked, at)
            return self.process_once(event_id, account)

        return self.retrying(apply)

    @once_per_event
    def confirm_journal_teacher(self, user_id: Any, role: str, provider_id: Any, region: Any,
                                at: datetime | None = None, *, event_id: str) -> bool:
        """EJ-2: linking one's e-journal account as a teacher confirms the teacher's profile (linked there as
        someone else, that e-journal confirms no teacher)."""
        return self._report_journal_link(user_id, provider_id, at, True, role == "teacher", region, event_id)

    @once_per_event
    def end_journal_link(self, user_id: Any, provider_id: Any, at: datetime | None, *, event_id: str) -> bool:
        """EJ-2: the account is no longer linked to that e-journal (unlinked, or the journal person linked another
        account): the confirmation it gave goes; another e-journal's still holds."""
        return self._report_journal_link(user_id, provider_id, at, False, False, None, event_id)
