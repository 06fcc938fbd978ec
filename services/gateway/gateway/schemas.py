"""Request and response schemas of the public API (the OpenAPI document is built from them)."""

from marshmallow import Schema, fields, validate

from identity.schemas import AccountView, SignedIn, SignInCodeIssued

__all__ = ["AccountView", "SignInCodeIssued", "SignedIn", "SignInCodeRequest", "SignInCodeConfirmation",
           "ErrorBody", "ErrorResponse", "Health"]


class SignInCodeRequest(Schema):
    phone = fields.String(required=True, validate=validate.Length(min=3, max=32),
                          metadata={"example": "+7 900 123-45-67"})


class SignInCodeConfirmation(Schema):
    code = fields.String(required=True, validate=validate.Regexp(r"^\s*\d{4,8}\s*$", error="Digits only."),
                         metadata={"example": "123456"})


class ErrorBody(Schema):
    code = fields.String(required=True, metadata={"description": "Stable machine code, e.g. sign_in.wrong_code"})
    message = fields.String(required=True, metadata={"description": "Human message"})
    details = fields.Dict(required=True)
    request_id = fields.String()


class ErrorResponse(Schema):
    error = fields.Nested(ErrorBody, required=True)


class Health(Schema):
    status = fields.String(required=True)
    checks = fields.Dict(keys=fields.String(), values=fields.String())
