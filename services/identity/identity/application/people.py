"""Profiles and who may see whom (ID-5, ID-7, ID-9, PL-3): a person is seen by their family and by the
people who share an organization or a chat with them."""

from __future__ import annotations

import uuid
from typing import Any

from identity.application.base import IdentityBase
from identity.domain import Account, ChatCircle, validate_profile
from identity.privacy import Relation, view
from shared.clock import utcnow
from shared.contracts.api.identity import UpdateProfile
from shared.errors import Forbidden, NotFound
from shared.store import command, once_per_event


class People(IdentityBase):
    @command
    def update_profile(self, actor_id: uuid.UUID, command: UpdateProfile) -> Account:
        """A person edits their profile; a parent may correct their child's (PL-3)."""
        if self.relation(actor_id, command.user_id) not in (Relation.SELF, Relation.PARENT):
            raise Forbidden("profile.forbidden", "You can edit only your own profile and your children's.")
        validate_profile(command.last_name, command.first_name, command.patronymic, command.birth_date, command.sex,
                         utcnow().date())
        account = self.get_account(command.user_id)
        account.update_profile(command.last_name, command.first_name, command.patronymic, command.birth_date,
                               command.sex, actor_id)
        self.save(account)
        return account

    def view_person(self, viewer_id: uuid.UUID, person_id: uuid.UUID) -> dict[str, Any]:
        """ID-7, ID-9: a person is seen by themselves, their family and the people who share
        an organization or a chat with them; to anyone else they do not exist."""
        rel = self.relation(viewer_id, person_id)
        if rel is Relation.OTHER and not (self.share_an_organization(viewer_id, person_id)
                                          or self.share_a_chat(viewer_id, person_id)):
            raise NotFound("account.not_found", "No such account.")
        return view(self.get_account(person_id), rel)

    def share_a_chat(self, a: uuid.UUID, b: uuid.UUID) -> bool:
        first, second = self.find(ChatCircle, ChatCircle.create_id(a)), self.find(ChatCircle, ChatCircle.create_id(b))
        return bool(first and second and set(first.chat_ids) & set(second.chat_ids))

    def share_an_organization(self, a: uuid.UUID, b: uuid.UUID) -> bool:
        first, second = self.membership(a), self.membership(b)
        return bool(first and second and set(first.roles) & set(second.roles))

    # -- who shares a chat, from messaging's events (who shares an organization: memberships.py) ------------------
    @once_per_event
    def track_chat_members(self, chat_id: str, entered: list[str], left: list[str], *, event_id: str) -> bool:
        """messaging's ChatCreated / ChatMembersChanged: who is in which chat (ID-7)."""

        def apply() -> bool:  # a copy applied meanwhile by another consumer: process_once saves nothing
            changed = []
            for user_id in dict.fromkeys(str(u) for u in entered):
                circle = self.find(ChatCircle, ChatCircle.create_id(user_id)) or ChatCircle(user_id=uuid.UUID(user_id))
                if chat_id not in circle.chat_ids:
                    circle.enter(chat_id)
                    changed.append(circle)
            for user_id in dict.fromkeys(str(u) for u in left):
                circle = self.find(ChatCircle, ChatCircle.create_id(user_id))
                if circle is not None and chat_id in circle.chat_ids:
                    circle.leave(chat_id)
                    changed.append(circle)
            return self.process_once(event_id, *changed)

        return self.retrying(apply)
