"""Manual chats (CH-3) and dialogs (CH-1): made, joined, left and renamed by people."""

from __future__ import annotations

import uuid

from messaging.application.base import Base, school_puts_in
from messaging.domain import Chat, DirectIndex, OrgRoster
from messaging.readmodel import school_chats_of
from shared.consistency import owner
from shared.contracts.api.commands import given
from shared.contracts.api.messaging import CreateChat, UpdateChat
from shared.errors import Forbidden, Invalid
from shared.store import command

ASK_SCHOOLS_AT_MOST = 3  # schools asked about two people before CH-1 refuses them a dialog


class Chats(Base):
    @command
    def create_chat(self, actor_id: uuid.UUID, c: CreateChat) -> Chat:
        """A manual chat (CH-3) belongs to a school: its creator and members are the
        school's members, so no stranger reaches a child through it (CH-6)."""
        if not c.name.strip() or len(c.name) > 100:
            raise Invalid("chat.invalid_name", "A chat name has 1 to 100 characters.")
        if c.organization_id is None:
            raise Invalid("chat.organization_required", "A chat belongs to a school: name its organization_id.")
        self._check_school_members(c.organization_id, actor_id, list(c.member_ids))
        pending: dict = {}
        chat = self._new_chat(pending, kind="manual", organization_id=c.organization_id, name=c.name.strip(),
                              created_by=actor_id, member_ids=[str(actor_id), *map(str, c.member_ids)],
                              closed=c.closed)
        self.save(*pending.values())
        return chat

    def add_members(self, actor_id: uuid.UUID, chat_id: uuid.UUID, member_ids: list[uuid.UUID]) -> Chat:
        def command() -> Chat:
            chat = self.chat(chat_id)
            chat.check_manager(actor_id)
            self._check_school_members(chat.organization_id, actor_id, member_ids)
            pending: dict = {}
            self._sync(chat, chat.members + [str(m) for m in member_ids], pending)
            self.save(*pending.values())
            return chat

        return self.retrying(command, ("chat", chat_id))

    def remove_member(self, actor_id: uuid.UUID, chat_id: uuid.UUID, member_id: uuid.UUID) -> Chat:
        """Moderation: the creator of a manual chat (CH-3) removes members; anyone may leave."""
        def command() -> Chat:
            chat = self.chat(chat_id)
            chat.check_member(actor_id)  # a non-member learns nothing of the chat (its kind included)
            if member_id != actor_id:
                chat.check_manager(actor_id)
                if not chat.closed and actor_id != chat.created_by:
                    raise Forbidden("chat.admins_only", "Only the chat's creator removes other members.")
            elif chat.system or chat.kind in ("direct", "inbox"):
                raise Forbidden("chat.system_managed", "Members of this chat follow the school's rosters.")
            chat.check_member(member_id)
            pending: dict = {}
            self._sync(chat, [m for m in chat.members if m != str(member_id)], pending)
            self.save(*pending.values())
            return chat

        return self.retrying(command, ("chat", chat_id))

    def update_chat(self, actor_id: uuid.UUID, c: UpdateChat) -> Chat:
        """Rename a manual chat or open/close it; closing and opening is its creator's (CH-3).
        What the command leaves out, or sets to null, stays as it is."""
        chat_id = c.chat_id
        changes = {k: v for k, v in given(c).items() if v is not None}
        name, closed = changes.get("name"), changes.get("closed")

        def command() -> Chat:
            chat = self.chat(chat_id)
            chat.check_manager(actor_id)
            if closed is not None and closed != chat.closed and actor_id != chat.created_by:
                raise Forbidden("chat.creator_only", "Only the chat's creator opens or closes it.")
            new_name = chat.name if name is None else name.strip()
            if not new_name or len(new_name) > 100:
                raise Invalid("chat.invalid_name", "A chat name has 1 to 100 characters.")
            new_closed = chat.closed if closed is None else closed
            if (new_name, new_closed) != (chat.name, chat.closed):
                chat.rename(new_name, new_closed)
                self.save(chat)
            return chat

        return self.retrying(command, ("chat", chat_id))

    # -- dialogs (CH-1) ----------------------------------------------------------------------------------
    def direct(self, actor_id: uuid.UUID, other_id: uuid.UUID) -> Chat:
        """CH-1: a dialog only between people who share a chat; a school may forbid
        dialogs between its students."""
        if actor_id == other_id:
            raise Invalid("direct.self", "A dialog needs two people.")
        index = self.find(DirectIndex, DirectIndex.create_id(actor_id, other_id))
        if index is not None:
            return self.chat(index.chat_id)
        shared, roles = self.shared_chats(actor_id, other_id), {}
        if not shared:
            shared, roles = self._shared_by_school(actor_id, other_id)
        if not shared:
            raise Forbidden("direct.no_shared_chat", "You can write to people you share a chat with.")
        allowed = False
        for chat in shared:
            roster = self.find(OrgRoster, OrgRoster.create_id(chat.organization_id)) if chat.organization_id \
                else None
            both_students = roster is not None and all(
                roles.get(str(p), roster.members.get(str(p))) == ["student"] for p in (actor_id, other_id))
            if not (both_students and not roster.settings.get("student_dialogs_allowed", True)):
                allowed = True
                break
        if not allowed:
            raise Forbidden("direct.students_not_allowed", "This school does not allow dialogs between students.")

        def command() -> Chat:
            again = self.find(DirectIndex, DirectIndex.create_id(actor_id, other_id))
            if again is not None:
                return self.chat(again.chat_id)
            pending: dict = {}
            chat = self._new_chat(pending, kind="direct", organization_id=None, name=None, created_by=actor_id,
                                  member_ids=[str(actor_id), str(other_id)])
            pending[DirectIndex.create_id(actor_id, other_id)] = DirectIndex(a=actor_id, b=other_id, chat_id=chat.id)
            self.save(*pending.values())
            return chat

        return self.retrying(command, ("direct", *sorted((str(actor_id), str(other_id)))))

    def _shared_by_school(self, a: uuid.UUID, b: uuid.UUID) -> tuple[list[Chat], dict[str, list[str]]]:
        """CH-1 right after one of the two joined a school (school's MemberJoined on its way to messaging): school
        is asked for both people's memberships of the schools whose chats hold either of them (at most
        ``ASK_SCHOOLS_AT_MOST``), and a school or class chat school puts BOTH in counts, with school's roles for
        the students' rule. Asked only on the way to a refusal; school's no stays a refusal (a stranger never)."""
        ask = owner("school_membership")
        if ask is None:
            return [], {}
        with self.read_model.reading() as db:
            rows = school_chats_of(db, a, b)
        by_school: dict[str, list[dict]] = {}
        for row in rows:
            by_school.setdefault(row["organization_id"], []).append(row)
        for organization_id, chats in list(by_school.items())[:ASK_SCHOOLS_AT_MOST]:
            school = uuid.UUID(organization_id)
            of_a = ask(a, school)
            of_b = ask(b, school) if of_a else None
            if not of_b:
                continue
            for row in chats:
                chat = self.find(Chat, uuid.UUID(row["chat_id"]))
                if chat is not None and school_puts_in(chat, of_a) and school_puts_in(chat, of_b):
                    return [chat], {str(a): of_a.get("roles") or [], str(b): of_b.get("roles") or []}
        return [], {}
