"""Read state (CH-4): how far each member has read a chat, and one's chats with their unread counts."""

from __future__ import annotations

import uuid

from messaging.application.base import Base
from messaging.domain import ReadMark, UserChats


class Reading(Base):
    def mark_read(self, actor_id: uuid.UUID, chat_id: uuid.UUID, seq: int) -> int:
        chat = self.chat(chat_id)
        chat.check_member(actor_id)
        seq = min(seq, self.last_seq(chat))

        def read() -> int:
            mark = self._read_mark(chat_id, actor_id)
            if seq > mark.read_until:
                mark.read(seq)
                self.save(mark)
            return mark.read_until

        return self.retrying(read, ("read", chat_id, actor_id))

    def chats_of(self, user_id: uuid.UUID) -> list[dict]:
        """One's chats with their last message and unread count."""
        mine = self.find(UserChats, UserChats.create_id(user_id))
        listed = []
        for chat_id in mine.chat_ids if mine else []:
            chat = self.chat(uuid.UUID(chat_id))
            last = self.last_seq(chat)
            mark = self.find(ReadMark, ReadMark.create_id(chat.id, user_id))
            read_until = mark.read_until if mark else -1
            listed.append({"chat": chat, "last_seq": last, "unread": max(0, last - read_until)})
        return sorted(listed, key=lambda c: -c["last_seq"])
