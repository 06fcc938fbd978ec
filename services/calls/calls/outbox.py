"""Which of calls's domain events become integration events (mapping only)."""

from __future__ import annotations

from collections.abc import Iterable


def to_integration_events(domain_event: object) -> Iterable[tuple[str, dict, str | None]]:
    return ()
