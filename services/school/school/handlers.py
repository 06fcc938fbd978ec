"""What school does with other services' events (``school.service`` consumes them): each handler reads the
event's data, already checked against its contract, and calls the application with plain values and the event's
id, so the application knows no CloudEvent. A handler returns False for an event already applied."""

from __future__ import annotations

from school.application import SchoolApplication
from shared.contracts import CloudEvent


def on_user_registered(app: SchoolApplication, event: CloudEvent) -> bool:
    data = event.data
    return app.record_person(event_id=event.id, user_id=data["user_id"], registered_via=data["registered_via"],
                             registered_at=data["registered_at"], last_name=data["last_name"],
                             first_name=data["first_name"], phone=data.get("phone"))


def on_profile_updated(app: SchoolApplication, event: CloudEvent) -> bool:
    data = event.data
    return app.rename_person(event_id=event.id, user_id=data["user_id"], last_name=data["last_name"],
                             first_name=data["first_name"], sequence=event.sequence)


def on_phone_detached(app: SchoolApplication, event: CloudEvent) -> bool:
    return app.hand_phone_over(event_id=event.id, user_id=event.data["user_id"],
                               new_user_id=event.data["new_user_id"])


def on_parent_linked(app: SchoolApplication, event: CloudEvent) -> bool:
    # sequence: the child's ParentLinks version in identity, so a link and an unlink of the pair are ordered
    return app.link_parent(event_id=event.id, parent_id=event.data["parent_user_id"],
                           child_id=event.data["child_user_id"], sequence=event.sequence)


def on_parent_unlinked(app: SchoolApplication, event: CloudEvent) -> bool:
    return app.unlink_parent(event_id=event.id, parent_id=event.data["parent_user_id"],
                             child_id=event.data["child_user_id"], unlinked_by=event.data["unlinked_by"],
                             sequence=event.sequence)


def on_journal_memberships(app: SchoolApplication, event: CloudEvent) -> bool:
    data = event.data
    return app.join_from_journal(event_id=event.id, user_id=data["user_id"], role=data["role"],
                                 organization_ids=data["organization_ids"], provider_id=data["provider_id"],
                                 at=data["changed_at"])
