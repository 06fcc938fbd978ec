"""calls's application: commands and queries by use case, no transport (the events' handlers are
``calls/handlers.py``)."""

from __future__ import annotations

from calls.application.lessons import Lessons
from calls.application.media import Media
from calls.application.participation import Participation
from calls.application.rooms import Rooms
from calls.application.starting import Starting
from calls.application.whiteboard import Whiteboards


class CallsApplication(Starting, Participation, Rooms, Media, Lessons, Whiteboards):
    name = "calls"
