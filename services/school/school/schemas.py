"""Marshmallow schemas of school's RPC results."""

from marshmallow import Schema, fields


class PersonView(Schema):
    user_id = fields.UUID(required=True)
    registered_via = fields.String(required=True)
    registered_at = fields.AwareDateTime(required=True)
    version = fields.Integer(required=True, metadata={"description": "Event-store version of the record."})
