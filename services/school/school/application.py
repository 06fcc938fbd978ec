"""School's application: commands and queries, no transport."""

from __future__ import annotations

import uuid

from eventsourcing.application import AggregateNotFoundError

from school.domain import Person
from shared.contracts import CloudEvent
from shared.errors import NotFound
from shared.store import ServiceApplication


class SchoolApplication(ServiceApplication):
    name = "school"

    def record_user(self, event: CloudEvent) -> bool:
        """Apply ``UserRegistered`` once. Returns False for a copy already applied."""
        if self.already_processed(event.id):
            return False
        data = event.data
        person = None
        if data["user_id"] not in self.repository:
            person = Person(
                user_id=data["user_id"],
                registered_via=data["registered_via"],
                registered_at=data["registered_at"],
                last_name=data["last_name"],
                first_name=data["first_name"],
            )
        return self.process_once(event.id, person)

    def get_person(self, user_id: uuid.UUID) -> Person:
        try:
            person = self.repository.get(user_id)
        except AggregateNotFoundError:
            raise NotFound("person.not_found", "School does not know this person (yet).") from None
        return person
