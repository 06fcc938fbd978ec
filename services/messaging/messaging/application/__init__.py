"""Messaging's application, one module per use case (issue #16): ``base`` holds what they share, ``app``
composes them. The names imported from ``messaging.application`` before the split still import from here."""

from messaging.application.app import MessagingApplication
from messaging.application.base import CLASS_CHAT_KINDS, poll_results

__all__ = ["CLASS_CHAT_KINDS", "MessagingApplication", "poll_results"]
