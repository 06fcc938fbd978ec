"""Polls (CH-4): members vote; the poll's author or a moderator closes it, the results stay."""

from __future__ import annotations

import uuid

from messaging.application.dialogs import Dialogs
from shared.errors import Forbidden


class Polls(Dialogs):  # what they add to a chat: its writers only (Dialogs.check_writer)
    def vote(self, actor_id: uuid.UUID, chat_id: uuid.UUID, seq: int, options: list[int]) -> dict:
        def command() -> dict:
            chat = self.chat(chat_id)
            self.check_writer(chat, actor_id)
            page = self._page_of(chat_id, seq)
            page.vote(seq, actor_id, options)
            self.save(page)
            return self._shown(chat, page.message(seq), actor_id)

        return self.retrying(command, ("chat", chat_id))

    def close_poll(self, actor_id: uuid.UUID, chat_id: uuid.UUID, seq: int) -> dict:
        """The poll's author (or a moderator) stops the voting; results stay."""
        def command() -> dict:
            chat = self.chat(chat_id)
            self.check_member(chat, actor_id)
            page = self._page_of(chat_id, seq)
            if page.message(seq)["author_id"] != str(actor_id) and not self._moderates(chat, actor_id):
                raise Forbidden("message.not_yours", "Only the poll's author closes it.")
            page.close_poll(seq, actor_id)
            self.save(page)
            return self._shown(chat, page.message(seq), actor_id)

        return self.retrying(command, ("chat", chat_id))
