"""Marshmallow schemas of messaging's RPC payloads and results."""

from marshmallow import Schema, fields, validate

from messaging.domain import MAX_TEXT


class ChatView(Schema):
    chat_id = fields.UUID(required=True)
    kind = fields.String(required=True)
    organization_id = fields.UUID(allow_none=True)
    class_id = fields.UUID(allow_none=True)
    subject = fields.String(allow_none=True)
    name = fields.String(allow_none=True)
    closed = fields.Boolean(required=True)
    system = fields.Boolean(required=True, metadata={"description": "Members follow the school's rosters (CH-2)"})
    member_ids = fields.List(fields.UUID(), required=True)


class ChatListItem(Schema):
    chat = fields.Nested(ChatView, required=True)
    last_seq = fields.Integer(required=True, metadata={"description": "-1 for an empty chat"})
    unread = fields.Integer(required=True)


class ChatInput(Schema):
    organization_id = fields.UUID(load_default=None, allow_none=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    member_ids = fields.List(fields.UUID(), load_default=list)
    closed = fields.Boolean(load_default=False, metadata={"description": "Only the creator manages it (CH-3)"})


class MembersInput(Schema):
    member_ids = fields.List(fields.UUID(), required=True, validate=validate.Length(min=1, max=500))


class SystemChatInput(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(["subject", "class_students", "class_parents",
                                                                  "class_colleagues"]))
    organization_id = fields.UUID(required=True)
    class_id = fields.UUID(required=True)
    teacher_id = fields.UUID(required=True)
    subject = fields.String(load_default=None, allow_none=True)


class MessageInput(Schema):
    text = fields.String(required=True, validate=validate.Length(min=1, max=MAX_TEXT))
    reply_to = fields.Integer(load_default=None, allow_none=True)
    on_behalf_of_organization = fields.Boolean(load_default=False,
                                               metadata={"description": "Admins post as the organization (CH-5)"})


class EditInput(Schema):
    text = fields.String(required=True, validate=validate.Length(min=1, max=MAX_TEXT))


class MessageView(Schema):
    seq = fields.Integer(required=True, metadata={"description": "Place in the chat's history; the cursor"})
    message_id = fields.UUID(required=True)
    author_id = fields.UUID(allow_none=True, metadata={"description": "None when the organization answered"})
    on_behalf_of = fields.UUID(allow_none=True)
    text = fields.String(required=True)
    reply_to = fields.Integer(allow_none=True)
    posted_at = fields.String(required=True)
    edited_at = fields.String(allow_none=True)
    deleted = fields.Boolean(required=True)
    deleted_at = fields.String()


class HistoryPage(Schema):
    items = fields.List(fields.Nested(MessageView), required=True)
    last_seq = fields.Integer(required=True)


class ReadInput(Schema):
    seq = fields.Integer(required=True, validate=validate.Range(min=0))


class ReadView(Schema):
    read_until = fields.Integer(required=True)
