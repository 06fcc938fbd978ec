"""Dialogs (CH-1): opened between people who share a chat, and written only while they still do."""

from __future__ import annotations

import uuid

from messaging.application.base import Base, school_puts_in
from messaging.domain import Chat, DirectIndex, OrgRoster
from messaging.readmodel import school_chats_of
from shared.consistency import asking, owner
from shared.errors import Forbidden, Invalid

ASK_SCHOOLS_AT_MOST = 3  # schools asked about two people before CH-1 refuses them a dialog


class Dialogs(Base):
    def direct(self, actor_id: uuid.UUID, other_id: uuid.UUID) -> Chat:
        """CH-1: a dialog only between people who share a chat; a school may forbid
        dialogs between its students. Asked again for a dialog they have, the rule is asked again too."""
        if actor_id == other_id:
            raise Invalid("direct.self", "A dialog needs two people.")
        self.check_dialog(actor_id, other_id)
        index = self.find(DirectIndex, DirectIndex.create_id(actor_id, other_id))
        if index is not None:
            return self.chat(index.chat_id)

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

    def check_dialog(self, a: uuid.UUID, b: uuid.UUID) -> None:
        """CH-1 now: ``a`` and ``b`` share a chat, and not as two students of a school that forbids their dialogs
        (raises Forbidden: ``direct.no_shared_chat``, ``direct.students_not_allowed``). Asked when a dialog is
        opened and whenever one is written: a teacher who left the school is a stranger to its pupils again."""
        shared, roles = self.shared_chats(a, b), {}
        if not shared:
            shared, roles = self._shared_by_school(a, b)
        if not shared:
            raise Forbidden("direct.no_shared_chat", "You can write to people you share a chat with.")
        for chat in shared:
            roster = self.find(OrgRoster, OrgRoster.create_id(chat.organization_id)) if chat.organization_id \
                else None
            both_students = roster is not None and all(
                roles.get(str(p), roster.members.get(str(p))) == ["student"] for p in (a, b))
            if not (both_students and not roster.settings.get("student_dialogs_allowed", True)):
                return
        raise Forbidden("direct.students_not_allowed", "This school does not allow dialogs between students.")

    def check_writer(self, chat: Chat, actor_id: uuid.UUID) -> None:
        """Who may add to a chat (a message, an edit, a vote, a file): its members (``check_member``), and in a
        dialog only while CH-1 still lets its two people talk (``check_dialog``); reading it stays theirs."""
        self.check_member(chat, actor_id)
        if chat.kind == "direct":
            others = [uuid.UUID(m) for m in chat.members if m != str(actor_id)]
            if others:
                self.check_dialog(actor_id, others[0])

    def dialog_refusal(self, chat: Chat) -> str | None:
        """Why a dialog takes no new messages now (``check_dialog``'s code), None while it does or for another
        kind of chat: the chat's view says it, and the client shows the dialog read-only."""
        if chat.kind != "direct" or len(chat.members) != 2:
            return None
        a, b = (uuid.UUID(m) for m in chat.members)
        try:
            # messaging's own knowledge only, never school asked: a hint for reading the chat, which a school
            # that does not answer must not turn into an error (a message written is asked in full)
            with asking(school_membership=None):
                self.check_dialog(a, b)
        except Forbidden as refused:
            return refused.code
        return None

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
