"""calls's event handlers: each reads an integration event and calls a typed application method with plain
values and the event's id (the application knows no CloudEvent)."""

from __future__ import annotations

import uuid

from calls.application import CallsApplication
from shared.contracts import CloudEvent

LESSON_FACTS = ("organization_id", "class_id", "subject", "teacher_user_id", "provider_id", "external_class_id",
                "external_teacher_id", "external_lesson_id", "remote")


def _call_id(event: CloudEvent) -> uuid.UUID:
    return uuid.UUID(str(event.data["call_id"]))


def on_participant_connected(app: CallsApplication, event: CloudEvent) -> bool:
    return app.participant_connected(_call_id(event), str(event.data.get("user_id") or ""), event_id=event.id)


def on_participant_disconnected(app: CallsApplication, event: CloudEvent) -> bool:
    data = event.data
    return app.participant_disconnected(_call_id(event), str(data.get("user_id") or ""), data.get("reason"),
                                        event_id=event.id)


def on_recording_written(app: CallsApplication, event: CloudEvent) -> bool:
    data = event.data
    return app.recording_written(_call_id(event), data["recording_id"], data["blob_key"], data["size"],
                                 data["media_type"], data["duration"], data["file_name"], event_id=event.id)


def lesson_facts(event: CloudEvent) -> tuple[uuid.UUID, dict, bool]:
    """A lesson event's lesson id, the facts calls keeps of it, and whether it was cancelled."""
    data = event.data
    facts = {k: (str(v) if isinstance(v, uuid.UUID) else v) for k, v in data.items() if k in LESSON_FACTS}
    return uuid.UUID(str(data["lesson_id"])), facts, event.contract.name == "LessonCancelled"


def on_lesson(app: CallsApplication, event: CloudEvent) -> bool:
    """LessonPublished, LessonRescheduled, LessonCancelled: keep the published remote lessons."""
    lesson_id, facts, cancelled = lesson_facts(event)
    return app.record_lesson(lesson_id, facts, cancelled, event_id=event.id)
