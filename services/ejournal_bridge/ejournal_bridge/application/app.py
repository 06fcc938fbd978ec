"""The e-journal bridge's application (docs/rules.md EJ-1..EJ-5, CH-2), by use case; the events' handlers are
``ejournal_bridge/handlers.py``.

Webhooks are verified, stored in the inbox and acknowledged; the bridge then
processes each delivery once (its own ``WebhookAccepted`` event through the
outbox and a consumer), applying it to its mirror of the journal's roster and
timetable. A process manager turns the mirror and the account links into
chats: the class teacher's three, one per (class, subject, teacher), members
being whoever is linked, through messaging's idempotent command.
"""

from __future__ import annotations

from ejournal_bridge.application.chats import Chats
from ejournal_bridge.application.inbox import Inbox
from ejournal_bridge.application.links import Links
from ejournal_bridge.application.providers import Providers
from ejournal_bridge.application.resyncs import Resyncs
from ejournal_bridge.application.roster import Roster
from ejournal_bridge.application.timetable import Timetable


class BridgeApplication(Providers, Inbox, Roster, Timetable, Chats, Links, Resyncs):
    name = "ejournal_bridge"
