"""Which of school's domain events become integration events (mapping only).

Knowing a person is school's private read model: nothing is published yet; the
school issue maps organizations, classes and memberships here."""

from __future__ import annotations

from collections.abc import Iterable


def to_integration_events(domain_event: object) -> Iterable[tuple[str, dict, str | None]]:
    return ()
