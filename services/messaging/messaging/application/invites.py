"""Invite links to manual chats (CH-3): one working link per chat, joined by a school's members only (CH-6)."""

from __future__ import annotations

import uuid
from typing import Any

from messaging.application.base import Base
from messaging.domain import Chat, ChatInvite
from shared.errors import Forbidden, NotFound


class Invites(Base):
    def create_invite(self, actor_id: uuid.UUID, chat_id: uuid.UUID) -> ChatInvite:
        """A new invite link; the previous one stops working."""
        def command() -> ChatInvite:
            chat = self.chat(chat_id)
            chat.check_manager(actor_id)
            changed: list[Any] = []
            if chat.invite_id is not None:
                previous = self.find(ChatInvite, chat.invite_id)
                if previous is not None and previous.active:
                    previous.revoke()
                    changed.append(previous)
            invite = ChatInvite(chat_id=chat_id, created_by=actor_id)
            chat.set_invite(invite.id)
            self.save(chat, invite, *changed)
            return invite

        return self.retrying(command, ("chat", chat_id))

    def current_invite(self, actor_id: uuid.UUID, chat_id: uuid.UUID) -> ChatInvite:
        chat = self.chat(chat_id)
        chat.check_manager(actor_id)
        if chat.invite_id is None:
            raise NotFound("invite.not_found", "This chat has no invite link.")
        return self.find(ChatInvite, chat.invite_id)

    def revoke_invite(self, actor_id: uuid.UUID, chat_id: uuid.UUID) -> None:
        def command() -> None:
            chat = self.chat(chat_id)
            chat.check_manager(actor_id)
            if chat.invite_id is None:
                raise NotFound("invite.not_found", "This chat has no invite link.")
            invite = self.find(ChatInvite, chat.invite_id)
            invite.revoke()
            chat.set_invite(None)
            self.save(chat, invite)

        self.retrying(command, ("chat", chat_id))

    def invited_chat(self, invite_id: uuid.UUID) -> Chat:
        """The chat a working link opens. A link is its maker's invitation: it admits only while they may still
        bring people in (``check_manager``): not once the creator closed the chat a member's link was made for
        (CH-3: a closed chat is the creator's alone), nor after its maker left the chat."""
        invite = self.find(ChatInvite, invite_id)
        if invite is None or not invite.active:
            raise NotFound("invite.not_found", "This invite link does not work any more.")
        chat = self.chat(invite.chat_id)
        try:
            chat.check_manager(invite.created_by)
        except Forbidden:
            raise NotFound("invite.not_found", "This invite link does not work any more.") from None
        return chat

    def join_by_invite(self, actor_id: uuid.UUID, invite_id: uuid.UUID) -> Chat:
        """Join a manual chat by its link; a school's chat takes members of that school only (CH-6)."""
        chat_id = self.invited_chat(invite_id).id

        def command() -> Chat:
            chat = self.invited_chat(invite_id)
            if chat.is_member(actor_id):
                return chat
            pending: dict = {}
            self._check_school_members(chat.organization_id, actor_id, [], pending)
            self._sync(chat, chat.members + [str(actor_id)], pending)
            self.save(*pending.values())
            return chat

        return self.retrying(command, ("chat", chat_id))
