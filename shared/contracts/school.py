"""Events published by school (DOMAIN.md: RO-*, SC-*). The school issue adds the rest."""

from marshmallow import fields, validate

from shared.contracts.envelope import DataSchema, contract

ROLES = ("admin", "teacher", "student", "parent")


@contract("school", "MemberJoined", 1)
class MemberJoinedV1(DataSchema):
    """A person became a member of an organization (SC-6), with a role (RO-1)."""

    organization_id = fields.UUID(required=True)
    user_id = fields.UUID(required=True)
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    class_id = fields.UUID(load_default=None, allow_none=True)
    subjects = fields.List(fields.String(), load_default=list)
    joined_at = fields.AwareDateTime(required=True)
