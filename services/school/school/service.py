"""school's nameko entrypoints: RPC and integration-event handlers."""

from __future__ import annotations

import uuid

from school.application import SchoolApplication
from school.schemas import PersonView
from shared.bus.consumer import consume_event
from shared.contracts import CloudEvent
from shared.errors import NotFound
from shared.service import EventSourcedApp, Observability, rpc


class SchoolService:
    name = "school"

    app: SchoolApplication = EventSourcedApp(SchoolApplication)
    observability = Observability()

    @consume_event("identity.UserRegistered.v1")
    def on_user_registered(self, event: CloudEvent) -> bool:
        return self.app.record_user(event)

    @rpc
    def validate_invite(self, token: str) -> dict:
        """The contract identity relies on for juniors' e-mail registration (ID-4):
        ``{organization_id, class_id, role, email_registration_allowed}`` for a
        usable invite, else NotFound / Gone with an ``invite.*`` code. Invite links
        arrive with the school issue (SC-5); until then no token is valid."""
        raise NotFound("invite.not_found", "This invite link does not exist.")

    @rpc
    def get_person(self, user_id: str) -> dict:
        person = self.app.get_person(uuid.UUID(user_id))
        return PersonView().dump({**vars(person), "user_id": person.id, "version": person.version})
