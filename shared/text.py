"""Names people show each other: a person's, a chat's, an organization's, a class's.

``hidden_characters`` finds what a name must not hold: control characters (Cc), format characters (Cf: the
direction overrides and isolates such as U+202E, zero-width spaces and joiners, the soft hyphen), line and paragraph
separators (Zl, Zp), private-use and unassigned code points. With them a name reads other than it is written (an
outside audit: a profile name reversed by U+202E, another padded with U+200B to pass for someone else's), and a
child reads these names. File names are cleaned the same way (shared/uploads.py); a message's text is not checked:
people write in every script, and the client shows it as text.
"""

from __future__ import annotations

import unicodedata

HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Co", "Cn", "Cs"})


def hidden_characters(text: str) -> bool:
    """Whether ``text`` holds a character that changes how it reads without being seen."""
    return any(unicodedata.category(ch) in HIDDEN_CATEGORIES for ch in text)
