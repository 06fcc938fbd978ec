"""What one person may see of another: decided here, and only here.

- Nobody but the person sees their phone number or e-mail (ID-9); not even
  their parents, nor anyone else on the platform.
- A parent sees their own children's profiles (PL-4, PL-7) and may correct
  them (PL-3); a child sees their parents' names.
- People who share an organization or a chat (e.g. an e-journal's chat of
  people linked from another school) see the name only: last name, first name
  and patronymic, never the date of birth or sex (ID-7: the learning profile
  shows no personal data).
- Anyone else sees nothing: the person does not exist for them (ID-7, ID-9);
  ``IdentityApplication.view_person`` refuses them as it refuses an unknown id.
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any

from identity.domain import Account


class Relation(StrEnum):
    SELF = "self"
    PARENT = "parent"  # the viewer is a parent of the person
    CHILD = "child"  # the viewer is a child of the person
    OTHER = "other"


def relation(viewer_id: uuid.UUID, person_id: uuid.UUID, viewer_children: set[str],
             viewer_parents: set[str]) -> Relation:
    if viewer_id == person_id:
        return Relation.SELF
    if str(person_id) in viewer_children:
        return Relation.PARENT
    if str(person_id) in viewer_parents:
        return Relation.CHILD
    return Relation.OTHER


def view(account: Account, rel: Relation) -> dict[str, Any]:
    """The fields of ``account`` a viewer with relation ``rel`` may see."""
    shown: dict[str, Any] = {
        "user_id": account.id,
        "last_name": account.last_name,
        "first_name": account.first_name,
        "patronymic": account.patronymic,
        "relation": rel.value,
        "teacher_confirmed": bool(getattr(account, "teacher_confirmed_by", [])),
    }
    if rel in (Relation.SELF, Relation.PARENT):
        shown.update(birth_date=account.birth_date, sex=account.sex, profile_complete=account.profile_complete)
    if rel is Relation.SELF:
        shown.update(phone=account.phone, email=account.email, registered_via=account.registered_via,
                     has_password=account.password_hash is not None, phone_detached=account.phone_detached)
    return shown
