"""Events published by identity (docs/rules.md: ID-*, PL-*)."""

from marshmallow import fields, validate

from shared.contracts.envelope import DataSchema, contract

SEXES = ("female", "male")


@contract("identity", "UserRegistered", 1)
class UserRegisteredV1(DataSchema):
    """A new account exists (ID-1, ID-3, ID-4, ID-5).

    ``phone`` (E.164) or ``email`` is the credential it registered with (juniors
    register by e-mail through an invite, ID-4: ``invite_token`` names it). The
    profile fields may still be empty: the profile is completed after sign-in
    and reported by ``ProfileUpdated``. The phone travels between services only
    (school matches an organization application's admin phone, SC-1); it is
    never shown to other users (ID-9).
    """

    user_id = fields.UUID(required=True)
    phone = fields.String(load_default=None, allow_none=True)
    email = fields.Email(load_default=None, allow_none=True)
    registered_via = fields.String(required=True, validate=validate.OneOf(["phone", "email"]))
    invite_token = fields.String(load_default=None, allow_none=True)
    last_name = fields.String(load_default=None, allow_none=True)
    first_name = fields.String(load_default=None, allow_none=True)
    patronymic = fields.String(load_default=None, allow_none=True)
    birth_date = fields.Date(load_default=None, allow_none=True)
    sex = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(SEXES))
    registered_at = fields.AwareDateTime(required=True)


@contract("identity", "ParentLinked", 1)
class ParentLinkedV1(DataSchema):
    """A parent confirmed a child's registration (PL-3, PL-4; at most two, PL-5).

    ``parent_number`` is 1 or 2. School makes the parent a member of every
    organization the child belongs to; messaging adds them to parents' chats.
    """

    link_id = fields.UUID(required=True)
    parent_user_id = fields.UUID(required=True)
    child_user_id = fields.UUID(required=True)
    parent_number = fields.Integer(required=True, validate=validate.Range(min=1, max=2))
    consent_given_at = fields.AwareDateTime(required=True)
    linked_at = fields.AwareDateTime(required=True)


@contract("identity", "ProfileUpdated", 1)
class ProfileUpdatedV1(DataSchema):
    """A person's profile changed (ID-5), by themself or by their parent (PL-3)."""

    user_id = fields.UUID(required=True)
    last_name = fields.String(required=True)
    first_name = fields.String(required=True)
    patronymic = fields.String(load_default=None, allow_none=True)
    birth_date = fields.Date(load_default=None, allow_none=True)
    sex = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(SEXES))
    updated_by = fields.UUID(required=True)
    updated_at = fields.AwareDateTime(required=True)


@contract("identity", "PhoneDetached", 1)
class PhoneDetachedV1(DataSchema):
    """ID-6 "this is not me": the phone left ``user_id`` (which keeps its data and
    is now without phone) for the new account ``new_user_id``."""

    user_id = fields.UUID(required=True)
    new_user_id = fields.UUID(required=True)
    detached_at = fields.AwareDateTime(required=True)


@contract("identity", "ParentUnlinked", 1)
class ParentUnlinkedV1(DataSchema):
    """A parent link was removed, by the parent or by an admin of the child's school."""

    link_id = fields.UUID(required=True)
    parent_user_id = fields.UUID(required=True)
    child_user_id = fields.UUID(required=True)
    unlinked_by = fields.UUID(required=True)
    unlinked_at = fields.AwareDateTime(required=True)


@contract("identity", "SessionEnded", 1)
class SessionEndedV1(DataSchema):
    """A session is over (ID-8): signed out from the sessions list, a reused refresh
    token, or idle too long. Its access tokens still verify until they expire; the
    gateway closes the session's realtime sockets at once."""

    session_id = fields.UUID(required=True)
    reason = fields.String(required=True, metadata={"description": "signed_out, refresh_token_reused, idle, ..."})
    ended_at = fields.AwareDateTime(required=True)
