"""People's names, learnt from identity's events: the names the web client shows for a dialog (the other person)
and an inbox thread (its writer, to the admins), which the chat list's filter matches them by (``GET /chats?q=``,
messaging.readmodel; the school's name, shown to the writer, is kept on its roster: ``Rosters``).
``messaging/handlers.py`` reads the events and calls this with plain values and the event's id."""

from __future__ import annotations

import uuid
from datetime import datetime

from messaging.application.base import Base
from messaging.domain import PersonName
from shared.store import once_per_event


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
