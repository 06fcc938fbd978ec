"""Messaging's application: its use cases composed (each module a handful of commands and the queries they need)."""

from __future__ import annotations

from messaging.application.attachments import Attachments
from messaging.application.chats import Chats
from messaging.application.inbox import Inbox
from messaging.application.invites import Invites
from messaging.application.messages import Messages
from messaging.application.names import Names
from messaging.application.polls import Polls
from messaging.application.reading import Reading
from messaging.application.reports import Reports
from messaging.application.rosters import Rosters
from messaging.application.search import Search
from messaging.application.system_chats import SystemChats


class MessagingApplication(Rosters, SystemChats, Chats, Invites, Inbox, Messages, Attachments, Polls, Reading,
                           Reports, Search, Names):
    """Chats, messages, read state and rosters (docs/rules.md CH-*); event handlers are in messaging/handlers.py."""
