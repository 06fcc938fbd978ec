"""The platform's one clock: aware UTC datetimes. Applications take ``now`` from here (tests pass their own)."""

from __future__ import annotations

from datetime import datetime, timezone


def utcnow() -> datetime:
    """Now, in UTC, timezone-aware."""
    return datetime.now(timezone.utc)
