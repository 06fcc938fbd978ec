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
    def track_chat_members(self, chat_id: str, entered: list[str], left: list[str], *, event_id: str,
                           sequence: int | None = None) -> bool:
        """messaging's ChatCreated / ChatMembersChanged: who is in which chat (ID-7), each person's place as of the
        chat's version (``sequence``): an older event than the one applied for them changes nothing, so an
        addition applied after the removal that followed it does not let them see the chat's people again."""

        def apply() -> bool:  # a copy applied meanwhile by another consumer: process_once saves nothing
            changed = {}
            for user_id, entering in [*((u, True) for u in dict.fromkeys(map(str, entered))),
                                      *((u, False) for u in dict.fromkeys(map(str, left)))]:
                circle = self.find(ChatCircle, ChatCircle.create_id(user_id))
                if circle is None and not entering and sequence is None:
                    continue
                circle = circle or ChatCircle(user_id=uuid.UUID(user_id))
                if circle.knows_newer(chat_id, sequence) or (
                        sequence is None and (chat_id in circle.chat_ids) == entering):
                    continue  # a removal of someone not there is kept (with its version): an older addition waits
                (circle.enter if entering else circle.leave)(chat_id, sequence)
                changed[circle.id] = circle
            return self.process_once(event_id, *changed.values())

        return self.retrying(apply)
