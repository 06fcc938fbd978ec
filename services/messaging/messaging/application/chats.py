"""Manual chats (CH-3): made, joined, left and renamed by people (dialogs, CH-1: dialogs.py)."""

from __future__ import annotations

import uuid

from messaging.application.base import Base
from messaging.domain import Chat
from shared.contracts.api.commands import given
from shared.contracts.api.messaging import CreateChat, UpdateChat
from shared.errors import Forbidden, Invalid
from shared.store import command
from shared.text import hidden_characters


class Chats(Base):
    @command
    def create_chat(self, actor_id: uuid.UUID, c: CreateChat) -> Chat:
        """A manual chat (CH-3) belongs to a school: its creator and members are the
        school's members, so no stranger reaches a child through it (CH-6)."""
        if not c.name.strip() or len(c.name) > 100 or hidden_characters(c.name):
            raise Invalid("chat.invalid_name", "A chat name has 1 to 100 characters, none of them hidden.")
        if c.organization_id is None:
            raise Invalid("chat.organization_required", "A chat belongs to a school: name its organization_id.")
        pending: dict = {}
        self._check_school_members(c.organization_id, actor_id, list(c.member_ids), pending)
        chat = self._new_chat(pending, kind="manual", organization_id=c.organization_id, name=c.name.strip(),
                              created_by=actor_id, member_ids=[str(actor_id), *map(str, c.member_ids)],
                              closed=c.closed)
        self.save(*pending.values())
        return chat

    def add_members(self, actor_id: uuid.UUID, chat_id: uuid.UUID, member_ids: list[uuid.UUID]) -> Chat:
        def command() -> Chat:
            chat = self.chat(chat_id)
            chat.check_manager(actor_id)
            pending: dict = {}
            self._check_school_members(chat.organization_id, actor_id, member_ids, pending)
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
            if not new_name or len(new_name) > 100 or hidden_characters(new_name):
                raise Invalid("chat.invalid_name", "A chat name has 1 to 100 characters, none of them hidden.")
            new_closed = chat.closed if closed is None else closed
            if (new_name, new_closed) != (chat.name, chat.closed):
                chat.rename(new_name, new_closed)
                self.save(chat)
            return chat

        return self.retrying(command, ("chat", chat_id))
