"""Events published by the e-journal bridge (docs/rules.md: EJ-*)."""

from marshmallow import ValidationError, fields, validate, validates_schema

from shared.contracts.envelope import DataSchema, contract


def subject_chat_key(provider_id: object, external_class_id: str, subject: str, external_teacher_id: str) -> str:
    """The key messaging knows a subject chat by: one per (class, subject, teacher) of a journal (EJ-4).
    The bridge defines the chat under it; calls finds a lesson's chat by it (CA-6)."""
    return f"ej:{provider_id}:{external_class_id}:subject:{subject.casefold()}:{external_teacher_id}"


@contract("ejournal_bridge", "LessonScheduled", 1)
class LessonScheduledV1(DataSchema):
    """A lesson slot of a class's timetable, mirrored from a regional e-journal.

    The external ids identify it on the journal's side; the platform ids are
    filled once the class and teacher are linked (EJ-1, EJ-2). ``remote`` marks
    a lesson held as a call (EJ-4, CA-2); messaging and calls key the subject
    chat and the one-lesson-per-subject rule (CA-8) on (class_id, subject).
    """

    lesson_id = fields.UUID(required=True)
    provider_id = fields.UUID(required=True)
    region = fields.String(required=True)
    external_lesson_id = fields.String(required=True)
    organization_id = fields.UUID(load_default=None, allow_none=True)
    class_id = fields.UUID(load_default=None, allow_none=True)
    external_class_id = fields.String(required=True)
    subject = fields.String(required=True)
    teacher_user_id = fields.UUID(load_default=None, allow_none=True)
    external_teacher_id = fields.String(required=True)
    starts_at = fields.AwareDateTime(required=True)
    ends_at = fields.AwareDateTime(required=True)
    remote = fields.Boolean(load_default=False)
    class_title = fields.String(load_default=None, allow_none=True)

    @validates_schema
    def _ends_after_start(self, data, **kwargs):
        if data["ends_at"] <= data["starts_at"]:
            raise ValidationError("ends_at must be after starts_at", "ends_at")


@contract("ejournal_bridge", "LessonRescheduled", 1)
class LessonRescheduledV1(LessonScheduledV1):
    """A lesson's time, subject, teacher or remote flag changed in the journal: the slot as it is now."""


@contract("ejournal_bridge", "LessonCancelled", 1)
class LessonCancelledV1(LessonScheduledV1):
    """A lesson was removed from the timetable (its last known slot)."""


@contract("ejournal_bridge", "LessonPublished", 1)
class LessonPublishedV1(LessonScheduledV1):
    """EJ-4, CA-2: the teacher published a remote lesson: a call may be started from it,
    its starter being the call's admin; the subject chat exists from the timetable."""


@contract("ejournal_bridge", "LessonStartRequested", 1)
class LessonStartRequestedV1(LessonScheduledV1):
    """EJ-5, CA-2: the teacher launched the remote lesson from the journal. The calls
    service starts the call (refusing a second for the same (class, subject), CA-8);
    students and parents join it from the diary with a link."""

    requested_by_external_id = fields.String(load_default=None, allow_none=True)


@contract("ejournal_bridge", "LessonEndRequested", 1)
class LessonEndRequestedV1(LessonScheduledV1):
    """CA-7: the lesson was ended from the journal (confirmed there); the calls
    service ends the call for everyone."""

    requested_by_external_id = fields.String(load_default=None, allow_none=True)


@contract("ejournal_bridge", "EjournalAccountLinked", 1)
class EjournalAccountLinkedV1(DataSchema):
    """EJ-1, EJ-2: a platform account is a person of a region's e-journal (one per
    provider). ``role`` as the journal says; a teacher's link confirms their profile."""

    user_id = fields.UUID(required=True)
    provider_id = fields.UUID(required=True)
    region = fields.String(required=True)
    external_person_id = fields.String(required=True)
    role = fields.String(required=True, validate=validate.OneOf(
        ("student", "teacher", "parent", "guardian", "administrator")))
    linked_at = fields.AwareDateTime(required=True)


@contract("ejournal_bridge", "EjournalAccountUnlinked", 1)
class EjournalAccountUnlinkedV1(DataSchema):
    user_id = fields.UUID(required=True)
    provider_id = fields.UUID(required=True)
    external_person_id = fields.String(required=True)
    unlinked_at = fields.AwareDateTime(required=True)


@contract("ejournal_bridge", "JournalMembershipsChanged", 1)
class JournalMembershipsChangedV1(DataSchema):
    """EJ-2: linking makes the organization work correctly: a linked person belongs to the
    platform organizations their journal schools are bound to, with the journal's role
    (``student``, ``teacher`` or ``parent``). School makes them members there. Sent when the
    link, the person's schools or a binding change; ``organization_ids`` is the whole set now."""

    user_id = fields.UUID(required=True)
    provider_id = fields.UUID(required=True)
    external_person_id = fields.String(required=True)
    role = fields.String(required=True, validate=validate.OneOf(("student", "teacher", "parent")))
    organization_ids = fields.List(fields.UUID(), required=True)
    changed_at = fields.AwareDateTime(required=True)


@contract("ejournal_bridge", "WebhookAccepted", 1)
class WebhookAcceptedV1(DataSchema):
    """A webhook stored in the bridge's inbox and acknowledged; the bridge processes
    it from this event (retries and dead letters like any consumer)."""

    delivery_id = fields.UUID(required=True)
    provider_id = fields.UUID(required=True)
    event_id = fields.String(required=True)
    type = fields.String(required=True)
    received_at = fields.AwareDateTime(required=True)


@contract("ejournal_bridge", "InboxReplayRequested", 1)
class InboxReplayRequestedV1(DataSchema):
    """An operator asked for a provider's inbox to be processed again (the bridge runs it)."""

    provider_id = fields.UUID(required=True)
    replay_id = fields.UUID(required=True)
    requested_at = fields.AwareDateTime(required=True)


@contract("ejournal_bridge", "SchoolResyncRequested", 1)
class SchoolResyncRequestedV1(DataSchema):
    """An operator bound a journal's school to a platform organization: the bridge resyncs the provider's
    chats and linked people's organizations from this event, in the background (issue #17)."""

    provider_id = fields.UUID(required=True)
    external_org_id = fields.String(required=True)
    resync_id = fields.UUID(required=True)
    organization_id = fields.UUID(required=True)
    requested_at = fields.AwareDateTime(required=True)
