"""Marshmallow schemas of identity's RPC results (the gateway documents them)."""

from marshmallow import Schema, fields


class SignInCodeIssued(Schema):
    challenge_id = fields.UUID(required=True)
    channel = fields.String(required=True, metadata={"description": "sms (flash_call later)"})
    phone = fields.String(required=True, metadata={"description": "The number, normalised to E.164."})
    resend_after = fields.Integer(required=True, metadata={"description": "Seconds until a new code may be asked."})
    expires_in = fields.Integer(required=True, metadata={"description": "Seconds the code stays valid."})


class SignedIn(Schema):
    user_id = fields.UUID(required=True)
    new_account = fields.Boolean(required=True)
    access_token = fields.String(required=True)
    token_type = fields.String(required=True)
    expires_in = fields.Integer(required=True)


class AccountView(Schema):
    """What a person sees of their own account."""

    user_id = fields.UUID(required=True)
    phone = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    registered_via = fields.String(required=True)
    last_name = fields.String(allow_none=True)
    first_name = fields.String(allow_none=True)
    patronymic = fields.String(allow_none=True)
