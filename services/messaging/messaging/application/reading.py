"""Read state (CH-4): how far each member has read a chat, one's chats with their unread counts, and who has read
a message."""

from __future__ import annotations

import uuid

from messaging.application.base import Base
from messaging.domain import ReadMark, UserChats
from shared.errors import Forbidden
from shared.paging import decode_cursor, encode_cursor


class Reading(Base):
    def mark_read(self, actor_id: uuid.UUID, chat_id: uuid.UUID, seq: int) -> int:
        chat = self.chat(chat_id)
        self.check_member(chat, actor_id)
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

    def readers(self, actor_id: uuid.UUID, chat_id: uuid.UUID, seq: int, cursor: str | None,
                limit: int) -> dict:
        """Who has read a message: the chat's members (its author aside) whose read mark is at or after its seq,
        shown to its author and the chat's admins (a manual chat's creator, the school's admins), a page at a
        time by user id. CH-5: in an inbox thread the admins read as the organization, so the person who wrote
        sees one reader without an id (``user_id`` None) however many admins read it."""
        chat = self.chat(chat_id)
        self.check_member(chat, actor_id)
        author = self._page_of(chat_id, seq).message(seq)["author_id"]
        if author != str(actor_id) and not self._moderates(chat, actor_id):
            raise Forbidden("message.readers_forbidden", "Only the message's author and the chat's admins see who "
                                                         "has read it.")
        hidden = set() if str(actor_id) in self.concealed(chat) else self.concealed(chat)
        read = [m for m in chat.members if m != author and self._read_until(chat_id, m) >= seq]
        everyone = sorted({"" if m in hidden else m for m in read})  # "": the organization, first
        after = decode_cursor(cursor)
        rest = everyone if after is None else [k for k in everyone if k > after]
        page = rest[:limit]
        return {"items": [{"user_id": k or None} for k in page], "count": len(everyone),
                "next_cursor": encode_cursor(page[-1]) if len(rest) > limit else None}

    def _read_until(self, chat_id: uuid.UUID, user_id: str) -> int:
        mark = self.find(ReadMark, ReadMark.create_id(chat_id, uuid.UUID(user_id)))
        return mark.read_until if mark else -1
