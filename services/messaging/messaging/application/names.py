"""People's names, learnt from identity's events: the names the web client shows for a dialog (the other person)
and an inbox thread (its writer, to the admins), which the chat list's filter matches them by (``GET /chats?q=``,
messaging.readmodel; the school's name, shown to the writer, is kept on its roster: ``Rosters``).
``messaging/handlers.py`` reads the events and calls these with plain values and the event's id.

``python -m messaging.names backfill`` asks identity and school, once, for the names of the people and schools
messaging's chats hold that came before it kept names (their events were consumed before; the next ones follow).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timezone

from messaging.application.base import Base
from messaging.application.rosters import name_organization
from messaging.domain import PersonName
from messaging.readmodel import unnamed
from shared.store import once_per_event

BACKFILLED_AT = datetime(1970, 1, 1, tzinfo=timezone.utc)  # older than any event's report: every one wins over it

# (viewer, person) -> (last name, first name, patronymic) as the viewer may see them, None when they may not
PersonNames = Callable[[str, str], "tuple[str | None, str | None, str | None] | None"]


class Names(Base):
    @once_per_event
    def name_person(self, user_id: uuid.UUID, last_name: str | None, first_name: str | None,
                    patronymic: str | None, at: datetime, *, event_id: str) -> bool:
        """identity's UserRegistered / ProfileUpdated: the person's name as of ``at`` (an older report than the
        one kept changes nothing: the events may come out of order)."""

        def command() -> bool:
            person = self.find(PersonName, PersonName.create_id(user_id))
            if person is None:
                person = PersonName(user_id=user_id, last_name=last_name, first_name=first_name,
                                    patronymic=patronymic, at=at)
            elif not person.rename(last_name, first_name, patronymic, at):
                return self.process_once(event_id)
            return self.process_once(event_id, person)

        return self.retrying(command, ("person-name", user_id))

    @once_per_event
    def name_organization(self, organization_id: uuid.UUID, name: str, at: datetime, *, event_id: str) -> bool:
        def command() -> bool:
            pending: dict = {}
            name_organization(self, self._org_roster(organization_id, pending), name, at, pending)
            return self.process_once(event_id, *pending.values())

        return self.retrying(command, ("org", organization_id))

    def backfill_names(self, person_names: PersonNames, organization_name: Callable[[str], str | None]
                       ) -> tuple[int, int]:
        """The names the filter lacks, from their owners (identity: a person as a member of the chat sees them;
        school: an organization), recorded as of 1970 so that any event's report wins; returns how many people and
        organizations were named."""
        with self.read_model.reading() as db:
            pairs, organizations = unnamed(db)
        people: dict[str, tuple | None] = {}
        for person, viewer in pairs:
            if people.get(person) is None:
                people[person] = person_names(viewer, person)
        named = [p for p, names in people.items() if names is not None and self.name_person(
            uuid.UUID(p), *names, BACKFILLED_AT, event_id=f"messaging:names-backfill:person:{p}")]
        schools = 0
        for organization_id in organizations:
            name = organization_name(organization_id)
            if name is not None and self.name_organization(
                    uuid.UUID(organization_id), name, BACKFILLED_AT,
                    event_id=f"messaging:names-backfill:organization:{organization_id}"):
                schools += 1
        return len(named), schools
