"""School's application (``app.SchoolApplication``), one module per use case."""

from school.application.app import SchoolApplication
from school.application.base import CONSOLE
from school.application.materials import sanitize_html

__all__ = ["CONSOLE", "SchoolApplication", "sanitize_html"]
