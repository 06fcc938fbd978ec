"""Read state (CH-4): how far each member has read a chat, one's chats with their unread counts, and who has read
a message."""

from __future__ import annotations

import uuid

from messaging.application.base import Base
from messaging.domain import MessagePage, ReadMark, UserChats
from messaging.readmodel import chat_list, members_seen_by, micros, readers_page
from shared.errors import Forbidden
from shared.store import query


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

    def chat_list(self, user_id: uuid.UUID, cursor: str | None = None, limit: int | None = None, q: str | None = None
                  ) -> tuple[list[dict], str | None]:
        """One's chats (``ChatView`` fields, the members one may see) with their last seq and unread count, newest
        last seq first, then the order they joined one's list: ``limit`` after ``cursor`` (all with None), and the
        next page's cursor. Paged in the read model (messaging.readmodel); ``q``: those named by its words."""
        with self.read_model.reading() as db:
            items, next_cursor = chat_list(db, user_id, cursor, limit, q)
        for item in items:
            item["chat"]["member_ids"] = members_seen_by(item["chat"], user_id)
        return items, next_cursor

    def chats_of(self, user_id: uuid.UUID) -> list[dict]:
        """One's chats with their last message and unread count, from the aggregates (``Chat`` objects): what
        ``chat_list`` pages from the read model, for the application's own callers and as its reference."""
        mine = self.find(UserChats, UserChats.create_id(user_id))
        listed, when = [], {}
        for chat_id in mine.chat_ids if mine else []:
            chat = self.chat(uuid.UUID(chat_id))
            page = self.find(MessagePage, MessagePage.create_id(chat.id, chat.pages - 1))
            last = page.next_seq - 1
            when[chat.id] = micros(page.messages[-1]["posted_at"]) if page.messages else -1
            mark = self.find(ReadMark, ReadMark.create_id(chat.id, user_id))
            read_until = mark.read_until if mark else -1
            listed.append({"chat": chat, "last_seq": last, "unread": max(0, last - read_until)})
        return sorted(listed, key=lambda c: -when[c["chat"].id])  # newest last message first, as chat_list

    @query
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
        with self.read_model.reading() as db:  # paged by user id in the read model (messaging.readmodel)
            return readers_page(db, chat_id, seq, author, hidden, cursor, limit)
