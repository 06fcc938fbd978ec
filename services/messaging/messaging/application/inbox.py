"""The organization inbox (CH-5): "write to the administration", a member's thread with every admin."""

from __future__ import annotations

import uuid

from messaging.application.base import Base
from messaging.domain import Chat
from messaging.readmodel import inbox_page
from shared.consistency import AskOwner, confirmed
from shared.errors import Forbidden


class Inbox(Base):
    def inbox_thread(self, member_id: uuid.UUID, organization_id: uuid.UUID,
                     school_says_member: AskOwner | None = None) -> Chat:
        """"Write to the administration": the member's thread with every admin. Right
        after joining, school's event may not be here yet: school itself is asked."""
        def command() -> Chat:
            pending: dict = {}
            roster = self._org_roster(organization_id, pending)
            if not confirmed(str(member_id) in roster.members, school_says_member):
                raise Forbidden("organization.members_only", "Only members of this organization can do this.")
            if str(member_id) in roster.inbox:
                return self.chat(uuid.UUID(roster.inbox[str(member_id)]))
            chat = self._new_chat(pending, kind="inbox", organization_id=organization_id, name=None,
                                  created_by=member_id, member_ids=[str(member_id), *roster.admins()])
            roster.open_inbox(member_id, chat.id)
            self.save(*pending.values())
            return chat

        return self.retrying(command, ("org", organization_id))

    def inbox(self, admin_id: uuid.UUID, organization_id: uuid.UUID) -> list[Chat]:
        roster = self._admin_roster(admin_id, organization_id)
        return [self.chat(uuid.UUID(c)) for c in roster.inbox.values()]

    def inbox_page(self, admin_id: uuid.UUID, organization_id: uuid.UUID, cursor: str | None = None,
                   limit: int | None = None) -> tuple[list[dict], str | None]:
        """The organization's inbox threads (``ChatView`` fields, all members) in the order they opened, for its
        admins: ``limit`` after ``cursor`` (all with None). Paged in the read model (messaging.readmodel)."""
        self._admin_roster(admin_id, organization_id)
        with self.read_model.reading() as db:
            return inbox_page(db, organization_id, cursor, limit)
