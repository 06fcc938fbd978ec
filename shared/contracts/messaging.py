"""Events published by messaging (docs/rules.md: CH-*)."""

from marshmallow import Schema, fields, validate

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


class AttachmentV1(Schema):
    attachment_id = fields.UUID(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(("photo", "voice", "audio", "video", "file")))
    file_name = fields.String(required=True)
    media_type = fields.String(required=True)
    size = fields.Integer(required=True)


class PollV1(Schema):
    question = fields.String(required=True)
    options = fields.List(fields.String(), required=True)
    multiple = fields.Boolean(required=True)
    closed = fields.Boolean(load_default=False)
    counts = fields.List(fields.Integer(), load_default=list)
    voters = fields.Integer(load_default=0)


@contract("messaging", "ChatUpdated", 1)
class ChatUpdatedV1(DataSchema):
    """A chat renamed, closed or opened: a manual chat by its creator (CH-3); an automatic one when what it is
    made from changes — the school chat when the school is renamed, a class or subject chat when its class or
    timetable does (CH-1, CH-2)."""

    chat_id = fields.UUID(required=True)
    name = fields.String(allow_none=True, load_default=None)
    closed = fields.Boolean(required=True)
    updated_at = fields.AwareDateTime(required=True)


@contract("messaging", "MessagePosted", 1)
class MessagePostedV1(DataSchema):
    """CH-4: a message in a chat, with its place (``seq``) in the chat's history.
    ``author_id`` is None when posted on behalf of the organization (CH-5).

    ``read_by_author`` True: the post also read the chat up to ``seq`` for its author (one's own message is never
    unread) -- this event IMPLIES that read mark, and no MessagesRead is published for it. Consumers take it as a
    MessagesRead of the author up to ``seq``: of ``author_id``, or, when that is None (on behalf of the
    organization, CH-5), of the organization, whichever admin wrote. False for a post that moves no one's mark (a
    call's recording, CA-6) and for events that do not say (their author's mark, if any, came as MessagesRead)."""

    chat_id = fields.UUID(required=True)
    message_id = fields.UUID(required=True)
    seq = fields.Integer(required=True)
    author_id = fields.UUID(load_default=None, allow_none=True)
    on_behalf_of = fields.UUID(load_default=None, allow_none=True, metadata={"description": "an organization"})
    text = fields.String(load_default="")
    reply_to = fields.Integer(load_default=None, allow_none=True)
    posted_at = fields.AwareDateTime(required=True)
    attachments = fields.List(fields.Nested(AttachmentV1), load_default=list)
    poll = fields.Nested(PollV1, load_default=None, allow_none=True)
    read_by_author = fields.Boolean(load_default=False, metadata={
        "description": "the author has read the chat up to this seq (no MessagesRead is published for it)"})
    author_read_from = fields.Integer(load_default=None, allow_none=True, metadata={
        "description": "with read_by_author: the author's read mark before this post (-1: none), so the post newly "
                       "read the messages after it up to seq; null when not known or not told (on behalf of the "
                       "organization, CH-5)"})


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
    deleted_by = fields.UUID(required=True, allow_none=True, metadata={
        "description": "Who deleted it; null when the message was the organization's (on_behalf_of): its admins "
                       "answer and take back as the organization, unnamed (CH-5)"})
    on_behalf_of = fields.UUID(load_default=None, allow_none=True,
                               metadata={"description": "The organization whose message it was (CH-5)"})
    deleted_at = fields.AwareDateTime(required=True)


@contract("messaging", "PollVoted", 1)
class PollVotedV1(DataSchema):
    """A vote changed a poll's results (CH-4): the totals, never who chose what."""

    chat_id = fields.UUID(required=True)
    message_id = fields.UUID(required=True)
    seq = fields.Integer(required=True)
    counts = fields.List(fields.Integer(), required=True)
    voters = fields.Integer(required=True)
    voted_at = fields.AwareDateTime(required=True)


@contract("messaging", "PollClosed", 1)
class PollClosedV1(DataSchema):
    chat_id = fields.UUID(required=True)
    message_id = fields.UUID(required=True)
    seq = fields.Integer(required=True)
    closed_at = fields.AwareDateTime(required=True)


@contract("messaging", "MessagesRead", 1)
class MessagesReadV1(DataSchema):
    """A member read a chat up to ``read_until`` (read marks for the other members): a mark-read by a reader.
    Not published for the read mark a post makes: MessagePosted implies it (its ``read_by_author``)."""

    chat_id = fields.UUID(required=True)
    user_id = fields.UUID(required=True)
    read_until = fields.Integer(required=True)
    read_at = fields.AwareDateTime(required=True)
    read_from = fields.Integer(load_default=None, allow_none=True, metadata={
        "description": "the reader's mark before this one (-1: none): this mark newly read the messages after it "
                       "up to read_until; null when not known (a mark stored before it was said) or not told (a "
                       "concealed admin's, CH-5)"})


@contract("messaging", "MessageReported", 1)
class MessageReportedV1(DataSchema):
    """A message reported to the admins of the listed organizations (moderation)."""

    report_id = fields.UUID(required=True)
    organization_ids = fields.List(fields.UUID(), required=True)
    chat_id = fields.UUID(required=True)
    seq = fields.Integer(required=True)
    message_id = fields.UUID(required=True)
    reported_by = fields.UUID(required=True)
    reason = fields.String(required=True)
    filed_at = fields.AwareDateTime(required=True)
