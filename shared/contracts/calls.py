"""Events published by calls (DOMAIN.md: CA-*)."""

from marshmallow import fields, validate

from shared.contracts.envelope import DataSchema, contract

CALL_KINDS = ("call", "lesson", "broadcast")


@contract("calls", "CallStarted", 1)
class CallStartedV1(DataSchema):
    """A call, lesson or broadcast is under way (CA-1, CA-2, CA-9).

    ``started_by`` is the call's admin (CA-2). ``invited_user_ids`` is empty when
    the whole chat is called. ``lesson_id``/``class_id``/``subject`` are set for
    lessons (CA-8 keys on them); ``max_participants`` is 100 (CA-1).
    """

    call_id = fields.UUID(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(CALL_KINDS))
    started_by = fields.UUID(required=True)
    organization_id = fields.UUID(load_default=None, allow_none=True)
    chat_id = fields.UUID(load_default=None, allow_none=True)
    lesson_id = fields.UUID(load_default=None, allow_none=True)
    class_id = fields.UUID(load_default=None, allow_none=True)
    subject = fields.String(load_default=None, allow_none=True)
    invited_user_ids = fields.List(fields.UUID(), load_default=list)
    max_participants = fields.Integer(load_default=100, validate=validate.Range(min=2, max=100))
    sfu_node = fields.String(load_default=None, allow_none=True)
    started_at = fields.AwareDateTime(required=True)
