"""identity's RPC contract: payloads and results of its entrypoints (ID-*, PL-*), as marshmallow schemas.
The service validates with them and the gateway documents and validates its requests with the same ones.
A body the service loads is a ``CommandSchema``: the service builds its typed command (a frozen dataclass named
as a verb, the body's fields plus the ids of the request's path) and the application method takes that."""

import uuid
from dataclasses import dataclass
from datetime import date

from marshmallow import Schema, fields, validate

from shared.contracts.api.commands import CommandSchema

SEXES = ("female", "male")


class SignInCodeIssued(Schema):
    challenge_id = fields.UUID(required=True)
    channel = fields.String(required=True, metadata={"description": "sms, flash_call or email"})
    sent_to = fields.String(required=True, metadata={"description": "The phone (E.164) or e-mail, normalised."})
    resend_after = fields.Integer(required=True, metadata={"description": "Seconds until a new code may be asked."})
    expires_in = fields.Integer(required=True, metadata={"description": "Seconds the code stays valid."})


class Refreshed(Schema):
    access_token = fields.String(required=True)
    token_type = fields.String(required=True)
    expires_in = fields.Integer(required=True)
    refresh_token = fields.String(metadata={"description": "Use once; the next one replaces it. Absent for a client "
                                                          "that asked for the httpOnly session cookie "
                                                          "('X-Sfera-Session: cookie')"})
    session_id = fields.UUID(required=True)


class SignedIn(Refreshed):
    user_id = fields.UUID(required=True)
    new_account = fields.Boolean(required=True)
    profile_complete = fields.Boolean(required=True, metadata={"description": "False: ask for the profile (ID-5)."})


class SessionView(Schema):
    session_id = fields.UUID(required=True)
    device = fields.String(required=True)
    method = fields.String(required=True)
    started_at = fields.AwareDateTime(required=True)
    last_used_at = fields.AwareDateTime(required=True)
    current = fields.Boolean(required=True)


@dataclass(frozen=True)
class Profile:
    """ID-5: what a profile says (the application checks it: real names, a date of birth in the past)."""

    last_name: str
    first_name: str
    birth_date: date
    sex: str
    patronymic: str | None = None


@dataclass(frozen=True, kw_only=True)
class UpdateProfile(Profile):
    """ID-5, PL-3: a person edits their own profile, or a parent corrects their child's (``user_id``: the path's)."""

    user_id: uuid.UUID


class ProfileInput(CommandSchema):
    """ID-5: real last and first name, optional patronymic, date of birth, sex."""

    command = UpdateProfile

    last_name = fields.String(required=True, validate=validate.Length(min=1, max=64))
    first_name = fields.String(required=True, validate=validate.Length(min=1, max=64))
    patronymic = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=64))
    birth_date = fields.Date(required=True)
    sex = fields.String(required=True, validate=validate.OneOf(SEXES))


class ChildProfileInput(ProfileInput):
    """PL-3: the child's profile as the parent corrects it when confirming the link (the same body; the child is
    the invite's, so no id comes with it)."""

    command = Profile


class PersonView(Schema):
    """A person as the viewer may see them (identity/privacy.py decides)."""

    user_id = fields.UUID(required=True)
    relation = fields.String(required=True, metadata={"description": "self, parent, child or other"})
    teacher_confirmed = fields.Boolean(metadata={"description": "A teacher confirmed by an e-journal link (EJ-2)"})
    last_name = fields.String(allow_none=True)
    first_name = fields.String(allow_none=True)
    patronymic = fields.String(allow_none=True)
    birth_date = fields.Date(allow_none=True, metadata={"description": "Only to oneself and one's parents."})
    sex = fields.String(allow_none=True, metadata={"description": "Only to oneself and one's parents."})
    profile_complete = fields.Boolean()
    phone = fields.String(allow_none=True, metadata={"description": "Only to oneself."})
    email = fields.String(allow_none=True, metadata={"description": "Only to oneself."})
    registered_via = fields.String()
    has_password = fields.Boolean()
    phone_detached = fields.Boolean()


class ParentInviteView(Schema):
    status = fields.String(required=True, validate=validate.OneOf(["active", "used_up"]),
                           metadata={"description": "used_up: two parents are linked, the link is spent (PL-5)"})
    token = fields.String(metadata={"description": "Only while active"})
    expires_at = fields.AwareDateTime(metadata={"description": "Only while active"})
    parents_linked = fields.Integer(required=True)


class ParentInviteOpened(PersonView):
    parents_linked = fields.Integer(required=True)
    expires_at = fields.AwareDateTime(required=True)


class ParentInvitePreview(Schema):
    """The parent link before signing in (PL-3): whose link it is, not the child's data."""

    first_name = fields.String(allow_none=True)
    last_initial = fields.String(allow_none=True)
    organization_ids = fields.List(fields.UUID(), metadata={"description": "The child's schools"})
    schools = fields.List(fields.Dict(), metadata={"description": "{organization_id, name} (added by the gateway)"})
    expires_at = fields.AwareDateTime(required=True)
