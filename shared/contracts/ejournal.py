"""Events published by the e-journal bridge (DOMAIN.md: EJ-*)."""

from marshmallow import ValidationError, fields, validates_schema

from shared.contracts.envelope import DataSchema, contract


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

    @validates_schema
    def _ends_after_start(self, data, **kwargs):
        if data["ends_at"] <= data["starts_at"]:
            raise ValidationError("ends_at must be after starts_at", "ends_at")
