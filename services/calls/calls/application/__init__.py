"""calls's application, by use case (``app.py`` composes them)."""

from calls.application.app import CallsApplication
from calls.application.base import participant_views

__all__ = ["CallsApplication", "participant_views"]
