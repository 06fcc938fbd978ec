"""The e-journal bridge's application, by use case (``app.py`` composes them)."""

from ejournal_bridge.application.app import BridgeApplication
from ejournal_bridge.application.base import ChatSink, JournalClient, digest
from ejournal_bridge.application.inbox import check_webhook_body, parse_time

__all__ = ["BridgeApplication", "ChatSink", "JournalClient", "check_webhook_body", "digest", "parse_time"]
