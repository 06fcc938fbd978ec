"""School's aggregates. For now: the people school knows about, projected from
identity's ``UserRegistered`` (rosters and memberships build on them)."""

from __future__ import annotations

import uuid
from datetime import datetime

from eventsourcing.domain import Aggregate, event


class Person(Aggregate):
    """A platform user as school knows them; its id is the identity user id."""

    @event("Recorded")
    def __init__(self, user_id: uuid.UUID, registered_via: str, registered_at: datetime, last_name: str | None,
                 first_name: str | None):
        self.user_id = user_id
        self.registered_via = registered_via
        self.registered_at = registered_at
        self.last_name = last_name
        self.first_name = first_name

    @staticmethod
    def create_id(user_id: uuid.UUID, **_: object) -> uuid.UUID:
        return user_id
