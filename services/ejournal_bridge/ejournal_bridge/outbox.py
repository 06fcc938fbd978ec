"""Which of ejournal_bridge's domain events become integration events (mapping only)."""

from __future__ import annotations

from collections.abc import Iterable

from ejournal_bridge.domain import AccountLink, Delivery, JournalPerson, Lesson, Provider, SchoolResync

LESSON_EVENTS = {
    Lesson.Scheduled: "LessonScheduled", Lesson.Rescheduled: "LessonRescheduled",
    Lesson.Cancelled: "LessonCancelled", Lesson.Published: "LessonPublished",
    Lesson.Started: "LessonStartRequested", Lesson.Ended: "LessonEndRequested",
}


def to_integration_events(e: object) -> Iterable[tuple[str, dict, str | None]]:
    if isinstance(e, Delivery.Received):
        yield "ejournal_bridge.WebhookAccepted.v1", {
            "delivery_id": e.originator_id, "provider_id": e.provider_id, "event_id": e.event_id, "type": e.type,
            "received_at": e.received_at}, str(e.provider_id)
    elif isinstance(e, Provider.ReplayRequested):
        yield "ejournal_bridge.InboxReplayRequested.v1", {
            "provider_id": e.originator_id, "replay_id": e.replay_id, "requested_at": e.timestamp}, None
    elif isinstance(e, SchoolResync.Requested):
        yield "ejournal_bridge.SchoolResyncRequested.v1", {
            "provider_id": e.provider_id, "external_org_id": e.external_org_id, "resync_id": e.resync_id,
            "organization_id": e.organization_id, "requested_at": e.requested_at}, None
    elif isinstance(e, AccountLink.Linked | AccountLink.Relinked):
        yield "ejournal_bridge.EjournalAccountLinked.v1", {
            "user_id": e.user_id, "provider_id": e.provider_id, "region": e.region,
            "external_person_id": e.external_person_id, "role": e.role, "linked_at": e.linked_at}, str(e.user_id)
    elif isinstance(e, JournalPerson.MembershipsAnnounced):
        yield "ejournal_bridge.JournalMembershipsChanged.v1", {
            "user_id": e.user_id, "provider_id": e.provider_id, "external_person_id": e.external_id,
            "role": e.role, "organization_ids": e.organization_ids, "changed_at": e.timestamp}, str(e.user_id)
    elif isinstance(e, AccountLink.Unlinked):
        yield "ejournal_bridge.EjournalAccountUnlinked.v1", {
            "user_id": e.user_id, "provider_id": e.provider_id, "external_person_id": e.external_person_id,
            "unlinked_at": e.unlinked_at}, str(e.user_id)
    else:
        for cls, name in LESSON_EVENTS.items():
            if isinstance(e, cls):
                extra = {"requested_by_external_id": e.by} if name.endswith("Requested") else {}
                yield f"ejournal_bridge.{name}.v1", {**e.facts, **extra}, e.facts["class_id"]
