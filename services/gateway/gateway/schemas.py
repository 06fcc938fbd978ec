"""Request and response schemas of the public API (the OpenAPI document is built from them).
Results of services reuse their contracts in shared.contracts.api."""

from marshmallow import Schema, fields, validate

from shared.contracts.api.identity import (
    ParentInviteOpened,
    PersonView,
    ProfileInput,
    Refreshed,
    SessionView,
    SignedIn,
    SignInCodeIssued,
)

__all__ = [
    "ParentInviteOpened", "PersonView", "ProfileInput", "Refreshed", "SessionView", "SignedIn", "SignInCodeIssued",
    "SignInCodeRequest", "EmailCodeRequest", "CodeConfirmation", "NotMe", "PasswordSignIn", "PasswordReset",
    "PasswordChange", "RefreshRequest", "ParentInviteLink", "ParentLinkConfirmation", "LinkCreated",
    "SignedOutCount", "ErrorBody", "ErrorResponse",
]

CODE = validate.Regexp(r"^\s*\d{4,8}\s*$", error="Digits only.")


class SignInCodeRequest(Schema):
    phone = fields.String(required=True, validate=validate.Length(min=3, max=32),
                          metadata={"example": "+7 900 123-45-67"})
    channel = fields.String(load_default="sms", validate=validate.OneOf(["sms", "flash_call"]),
                            metadata={"description": "sms, or flash_call: the code is the caller's last 4 digits"})


class EmailCodeRequest(Schema):
    email = fields.String(required=True, validate=validate.Length(min=3, max=254))
    invite_token = fields.String(required=True, validate=validate.Length(min=1, max=200),
                                 metadata={"description": "An invite of a junior class that allows e-mail (ID-4)"})


class CodeConfirmation(Schema):
    code = fields.String(required=True, validate=CODE, metadata={"example": "123456"})


class NotMe(Schema):
    challenge_id = fields.UUID(required=True)
    code = fields.String(required=True, validate=CODE)


class PasswordSignIn(Schema):
    phone = fields.String(required=True, validate=validate.Length(min=3, max=32))
    password = fields.String(required=True, load_only=True, validate=validate.Length(min=1, max=256))


class PasswordReset(Schema):
    challenge_id = fields.UUID(required=True)
    code = fields.String(required=True, validate=CODE)
    new_password = fields.String(required=True, load_only=True, validate=validate.Length(min=1, max=256))


class PasswordChange(Schema):
    current_password = fields.String(load_default=None, load_only=True, allow_none=True,
                                     metadata={"description": "Required when a password is already set"})
    new_password = fields.String(required=True, load_only=True, validate=validate.Length(min=1, max=256))


class RefreshRequest(Schema):
    refresh_token = fields.String(load_default=None, validate=validate.Length(min=1, max=200),
                                  metadata={"description": "Required unless the client refreshes by its session "
                                                           "cookie ('X-Sfera-Session: cookie')"})


class ParentInviteLink(Schema):
    status = fields.String(required=True, metadata={"description": "active, or used_up once two parents are "
                                                                   "linked (PL-5): then no token, url or expiry"})
    token = fields.String()
    url = fields.String(metadata={"description": "The link to give to parents (also as a QR code)"})
    expires_at = fields.AwareDateTime()
    parents_linked = fields.Integer(required=True)


class ParentLinkConfirmation(Schema):
    consent = fields.Boolean(required=True, metadata={"description": "'I consent to my child using the platform'"})
    child = fields.Nested(ProfileInput, load_default=None, allow_none=True,
                          metadata={"description": "The child's data, corrected by the parent (PL-3)"})


class LinkCreated(Schema):
    link_id = fields.UUID(required=True)


class SignedOutCount(Schema):
    signed_out = fields.Integer(required=True)


class ErrorBody(Schema):
    code = fields.String(required=True, metadata={"description": "Stable machine code, e.g. sign_in.wrong_code"})
    message = fields.String(required=True, metadata={"description": "Human message"})
    details = fields.Dict(required=True)
    request_id = fields.String()


class ErrorResponse(Schema):
    error = fields.Nested(ErrorBody, required=True)
