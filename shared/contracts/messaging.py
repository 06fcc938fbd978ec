"""Events published by messaging (DOMAIN.md: CH-*)."""

from marshmallow import fields, validate

from shared.contracts.envelope import DataSchema, contract

CHAT_KINDS = ("organization", "class", "subject", "class_students", "class_parents", "class_colleagues", "manual",
              "direct", "inbox")


@contract("messaging", "ChatCreated", 1)
class ChatCreatedV1(DataSchema):
    """A chat exists (CH-1..CH-3, CH-5); ``key`` identifies a system chat (e.g. a
    subject chat's class, subject and teacher) so creating it twice is one chat."""

    chat_id = fields.UUID(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(CHAT_KINDS))
    organization_id = fields.UUID(load_default=None, allow_none=True)
    class_id = fields.UUID(load_default=None, allow_none=True)
    subject = fields.String(load_default=None, allow_none=True)
    name = fields.String(load_default=None, allow_none=True)
    key = fields.String(load_default=None, allow_none=True)
    member_ids = fields.List(fields.UUID(), required=True)
    created_by = fields.UUID(load_default=None, allow_none=True)
    created_at = fields.AwareDateTime(required=True)


@contract("messaging", "ChatMembersChanged", 1)
class ChatMembersChangedV1(DataSchema):
    """Members joined or left a chat (the difference; ChatCreated has the first members)."""

    chat_id = fields.UUID(required=True)
    added = fields.List(fields.UUID(), load_default=list)
    removed = fields.List(fields.UUID(), load_default=list)
    changed_at = fields.AwareDateTime(required=True)


@contract("messaging", "MessagePosted", 1)
class MessagePostedV1(DataSchema):
    """CH-4: a message in a chat, with its place (``seq``) in the chat's history.
    ``author_id`` is None when posted on behalf of the organization (CH-5)."""

    chat_id = fields.UUID(required=True)
    message_id = fields.UUID(required=True)
    seq = fields.Integer(required=True)
    author_id = fields.UUID(load_default=None, allow_none=True)
    on_behalf_of = fields.UUID(load_default=None, allow_none=True, metadata={"description": "an organization"})
    text = fields.String(load_default="")
    reply_to = fields.Integer(load_default=None, allow_none=True)
    posted_at = fields.AwareDateTime(required=True)


@contract("messaging", "MessageEdited", 1)
class MessageEditedV1(DataSchema):
    chat_id = fields.UUID(required=True)
    message_id = fields.UUID(required=True)
    seq = fields.Integer(required=True)
    text = fields.String(required=True)
    edited_at = fields.AwareDateTime(required=True)


@contract("messaging", "MessageDeleted", 1)
class MessageDeletedV1(DataSchema):
    chat_id = fields.UUID(required=True)
    message_id = fields.UUID(required=True)
    seq = fields.Integer(required=True)
    deleted_by = fields.UUID(required=True)
    deleted_at = fields.AwareDateTime(required=True)
