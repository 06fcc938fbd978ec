"""System chats on request: the e-journal bridge's command (CH-2, EJ-3, EJ-4), and a
system chat found by its key (EJ-7)."""

from __future__ import annotations

import uuid

from messaging.application.base import CLASS_CHAT_KINDS, Base
from messaging.domain import Chat, ChatKey
from shared.contracts.api.messaging import DefineSystemChat, EnsureSystemChat
from shared.errors import Invalid, NotFound


class SystemChats(Base):
    def ensure_system_chat(self, c: EnsureSystemChat) -> Chat:
        """The subject chat of (class, subject, teacher) or one of the class teacher's
        three chats; asking again returns the same chat (idempotent by its key)."""
        if c.kind not in CLASS_CHAT_KINDS[1:]:
            raise Invalid("chat.invalid_kind", "subject, class_students, class_parents or class_colleagues.")
        if c.kind == "subject" and not c.subject:
            raise Invalid("chat.subject_required", "A subject chat names its subject.")
        key = f"{c.kind}:{c.class_id}:{(c.subject or '').casefold()}:{c.teacher_id}"

        def command() -> Chat:
            existing = self.find(ChatKey, ChatKey.create_id(key))
            if existing is not None:
                chat = self.chat(existing.chat_id)
                if c.organization_id and str(c.organization_id) != str(chat.organization_id):
                    chat.set_organization(c.organization_id)  # made before its school was bound (EJ-2)
                    self.save(chat)
                return chat
            pending: dict = {}
            roster = self._class_roster(c.class_id, c.organization_id, pending)
            chat = self._new_chat(pending, kind=c.kind, organization_id=c.organization_id, name=c.subject,
                                  created_by=None, member_ids=[], class_id=c.class_id, subject=c.subject, key=key,
                                  teacher_id=c.teacher_id)
            pending[ChatKey.create_id(key)] = ChatKey(key=key, chat_id=chat.id)
            roster.follow(chat.id)
            self._sync(chat, roster.members_for(chat), pending)
            self.save(*pending.values())
            return chat

        return self.retrying(command, ("class", c.class_id))

    def define_system_chats(self, specs: list[DefineSystemChat]) -> list[dict]:
        """The e-journal bridge's command (CH-2, EJ-3, EJ-4): each chat by its key, with
        the members the bridge computed from the journal and the links. Creates the chat
        the first time, then only brings name and members in line: asking twice is once.
        A retiring chat (``retire``) is emptied: its owner left (its history stays)."""
        results = []
        for spec in specs:
            key = spec.key

            def command(spec: DefineSystemChat = spec, key: str = key) -> dict:
                existing = self.find(ChatKey, ChatKey.create_id(key))
                pending: dict = {}
                members = [] if spec.retire else list(dict.fromkeys(map(str, spec.member_ids)))
                if existing is None:
                    if spec.retire:
                        return {"key": key, "chat_id": None, "added": [], "removed": []}
                    if spec.kind not in CLASS_CHAT_KINDS[1:]:
                        raise Invalid("chat.invalid_kind", "subject, class_students, class_parents or "
                                                           "class_colleagues.")
                    chat = self._new_chat(pending, kind=spec.kind, organization_id=spec.organization_id,
                                          name=spec.name, created_by=None, member_ids=members,
                                          class_id=spec.class_id, subject=spec.subject, key=key,
                                          teacher_id=spec.teacher_id)
                    chat_key = pending[ChatKey.create_id(key)] = ChatKey(key=key, chat_id=chat.id)
                    if spec.as_of:
                        chat_key.applied(spec.as_of)
                    self.save(*pending.values())
                    return {"key": key, "chat_id": str(chat.id), "added": members, "removed": []}
                chat = self.chat(existing.chat_id)
                if existing.stale(spec.as_of):
                    return {"key": key, "chat_id": str(chat.id), "added": [], "removed": [], "set_aside": True}
                if spec.as_of and spec.as_of > getattr(existing, "as_of", 0):
                    existing.applied(spec.as_of)
                    pending[existing.id] = existing
                before = set(chat.members)
                self._sync(chat, members, pending)
                if not spec.retire and spec.name and spec.name != chat.name:
                    chat.rename(spec.name, chat.closed)
                    pending[chat.id] = chat
                if not spec.retire and spec.organization_id and str(spec.organization_id) != str(chat.organization_id):
                    chat.set_organization(spec.organization_id)  # made before its school was bound (EJ-2)
                    pending[chat.id] = chat
                if pending:
                    self.save(*pending.values())
                return {"key": key, "chat_id": str(chat.id), "added": sorted(set(members) - before),
                        "removed": sorted(before - set(members))}

            results.append(self.retrying(command, ("chat-key", key)))
        return results

    def chat_by_key(self, actor_id: uuid.UUID, key: str) -> Chat:
        """A system chat by its key, for its members (EJ-7: opened from the e-journal's lesson page)."""
        found = self.find(ChatKey, ChatKey.create_id(key))
        if found is None:
            raise NotFound("chat.not_found", "This lesson has no chat yet: its teacher has not linked the journal.")
        chat = self.chat(found.chat_id)
        self.check_member(chat, actor_id)
        return chat
