"""Which of identity's domain events become integration events (mapping only)."""

from __future__ import annotations

from collections.abc import Iterable

from identity.domain import Account


def to_integration_events(domain_event: object) -> Iterable[tuple[str, dict, str | None]]:
    if isinstance(domain_event, Account.Registered):
        yield (
            "identity.UserRegistered.v1",
            {
                "user_id": domain_event.originator_id,
                "phone": domain_event.phone,
                "email": domain_event.email,
                "registered_via": domain_event.registered_via,
                "registered_at": domain_event.timestamp,
            },
            str(domain_event.originator_id),
        )
