"""messaging's RPC contract: payloads and results of its entrypoints (CH-*), as marshmallow schemas, and the
limits of messages and attachments both sides check. The gateway documents and validates with the same ones.
A body that messaging's entrypoints load becomes a typed command (shared.contracts.api.commands): the frozen
dataclass just above its schema."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from marshmallow import Schema, ValidationError, fields, validate

from shared.config import env_int
from shared.contracts.api.commands import UNSET, CommandSchema
from shared.paging import Cursor, Limit

MAX_TEXT = 10_000
MAX_ATTACHMENTS = 10
MB = 1024 * 1024

# What each kind of attachment may be (CH-4): media types and the largest size.
# ``None`` as the types means any type but an executable one. Types are sniffed from the content.
ATTACHMENT_KINDS: dict[str, tuple[frozenset[str] | None, int]] = {
    "photo": (frozenset({"image/jpeg", "image/png", "image/webp", "image/gif"}), 10 * MB),
    "voice": (frozenset({"audio/ogg", "audio/webm", "audio/mp4", "audio/mpeg", "audio/aac"}), 10 * MB),
    "audio": (frozenset({"audio/mpeg", "audio/mp4", "audio/aac", "audio/ogg", "audio/webm", "audio/wav",
                         "audio/x-wav", "audio/flac"}), 50 * MB),
    "video": (frozenset({"video/mp4", "video/webm", "video/quicktime"}), 200 * MB),
    "file": (None, 50 * MB),
}
POLL_OPTIONS = (2, 10)


def attachment_max_bytes(kind: str) -> int:
    """The largest attachment of a kind; ``SFERA_ATTACHMENT_MAX_BYTES`` caps every kind."""
    cap = env_int("SFERA_ATTACHMENT_MAX_BYTES", 0)
    limit = ATTACHMENT_KINDS[kind][1]
    return min(limit, cap) if cap > 0 else limit


SYSTEM_CHAT_KINDS = ["subject", "class_students", "class_parents", "class_colleagues"]


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
    read_only_reason = fields.String(allow_none=True, metadata={
        "description": "A chat read alone (GET /chats/{chat_id}): why it takes no new messages, calls or files "
                       "from its viewer now, as an error code (a dialog whose two people no longer share a chat: "
                       "direct.no_shared_chat; two students of a school that forbids their dialogs: "
                       "direct.students_not_allowed); null while it does. Not in lists."})


class ChatListItem(Schema):
    chat = fields.Nested(ChatView, required=True)
    last_seq = fields.Integer(required=True, metadata={"description": "-1 for an empty chat"})
    unread = fields.Integer(required=True)


@dataclass(frozen=True)
class CreateChat:
    """A manual chat (CH-3) of a school (CH-6); ``organization_id`` is in the body."""

    organization_id: uuid.UUID | None
    name: str
    member_ids: tuple[uuid.UUID, ...] = ()
    closed: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "member_ids", tuple(self.member_ids))  # the body's list, kept unchangeable


class ChatInput(CommandSchema):
    command = CreateChat
    organization_id = fields.UUID(required=True, metadata={"description": "The school the chat belongs to (CH-6)"})
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    member_ids = fields.List(fields.UUID(), load_default=list)
    closed = fields.Boolean(load_default=False, metadata={"description": "Only the creator manages it (CH-3)"})


class MembersInput(Schema):
    member_ids = fields.List(fields.UUID(), required=True, validate=validate.Length(min=1, max=500))


@dataclass(frozen=True)
class EnsureSystemChat:
    """A subject chat of (class, subject, teacher) or one of the class teacher's three (CH-2)."""

    kind: str
    organization_id: uuid.UUID
    class_id: uuid.UUID
    teacher_id: uuid.UUID
    subject: str | None = None


class SystemChatInput(CommandSchema):
    command = EnsureSystemChat
    kind = fields.String(required=True, validate=validate.OneOf(SYSTEM_CHAT_KINDS))
    organization_id = fields.UUID(required=True)
    class_id = fields.UUID(required=True)
    teacher_id = fields.UUID(required=True)
    subject = fields.String(load_default=None, allow_none=True)


class PollInput(Schema):
    question = fields.String(required=True, validate=validate.Length(min=1, max=300))
    options = fields.List(fields.String(validate=validate.Length(min=1, max=100)), required=True,
                          validate=validate.Length(min=POLL_OPTIONS[0], max=POLL_OPTIONS[1]))
    multiple = fields.Boolean(load_default=False, metadata={"description": "Several options may be chosen"})


@dataclass(frozen=True)
class DefineSystemChat:
    """A chat the e-journal bridge defines by its key, with the members it computed (CH-2, EJ-3, EJ-4);
    ``retire`` empties the chat of an owner who left."""

    key: str
    retire: bool = False
    kind: str | None = None
    organization_id: uuid.UUID | None = None
    class_id: uuid.UUID | None = None
    subject: str | None = None
    teacher_id: uuid.UUID | None = None
    name: str | None = None
    member_ids: tuple[uuid.UUID, ...] = ()
    as_of: int | None = None  # the bridge's log position the members were read at: an older list is set aside

    def __post_init__(self) -> None:
        object.__setattr__(self, "member_ids", tuple(self.member_ids))


class SystemChatSpec(CommandSchema):
    """A chat the e-journal bridge defines: by key, with its members (CH-2)."""

    command = DefineSystemChat
    key = fields.String(required=True, validate=validate.Length(min=1, max=300))
    retire = fields.Boolean(load_default=False)
    kind = fields.String(load_default=None, validate=validate.OneOf(SYSTEM_CHAT_KINDS))
    organization_id = fields.UUID(load_default=None, allow_none=True)
    class_id = fields.UUID(load_default=None, allow_none=True)
    subject = fields.String(load_default=None, allow_none=True)
    teacher_id = fields.UUID(load_default=None, allow_none=True)
    name = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=100))
    member_ids = fields.List(fields.UUID(), load_default=list, validate=validate.Length(max=5000))
    as_of = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=0), metadata={
        "description": "The bridge's log position its members were read at: a list read before the one applied "
                       "(syncs of one class run at once) changes nothing"})


@dataclass(frozen=True)
class PostMessage:
    """A message in a chat (CH-4): text, attachments uploaded to the chat first, a poll (a dict as PollInput
    loads it), or several of these; ``client_message_id`` is the client's idempotency key."""

    chat_id: uuid.UUID
    text: str = ""
    reply_to: int | None = None
    on_behalf_of_organization: bool = False
    attachment_ids: tuple[uuid.UUID, ...] = ()
    poll: dict | None = None
    client_message_id: uuid.UUID | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "attachment_ids", tuple(self.attachment_ids))


class MessageInput(CommandSchema):
    command = PostMessage
    text = fields.String(load_default="", validate=validate.Length(max=MAX_TEXT),
                         metadata={"description": "Required unless the message has attachments or a poll"})
    reply_to = fields.Integer(load_default=None, allow_none=True)
    on_behalf_of_organization = fields.Boolean(load_default=False,
                                               metadata={"description": "Admins post as the organization (CH-5)"})
    attachment_ids = fields.List(fields.UUID(), load_default=list, validate=validate.Length(max=MAX_ATTACHMENTS),
                                 metadata={"description": "Files uploaded to this chat first"})
    poll = fields.Nested(PollInput, load_default=None, allow_none=True)
    client_message_id = fields.UUID(load_default=None, allow_none=True, metadata={"description": (
        "The client's id of this message (its idempotency key), chosen when it is typed and sent on every "
        "attempt: a retry with the same id answers the first message (same seq) instead of posting it again. "
        "Per author and chat; a retry with another text is still the same message (the first wins). "
        "The Idempotency-Key header does the same when the body has none.")})


class AttachmentView(Schema):
    attachment_id = fields.UUID(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(list(ATTACHMENT_KINDS)))
    file_name = fields.String(required=True)
    media_type = fields.String(required=True)
    size = fields.Integer(required=True)


class PollView(Schema):
    question = fields.String(required=True)
    options = fields.List(fields.String(), required=True)
    multiple = fields.Boolean(required=True)
    closed = fields.Boolean(required=True)
    counts = fields.List(fields.Integer(), required=True, metadata={"description": "Votes per option"})
    voters = fields.Integer(required=True)
    my_choice = fields.List(fields.Integer(), required=True, metadata={"description": "The viewer's own choice"})


class VoteInput(Schema):
    options = fields.List(fields.Integer(validate=validate.Range(min=0)), required=True,
                          validate=validate.Length(max=POLL_OPTIONS[1]),
                          metadata={"description": "Option indexes; empty withdraws the vote"})


@dataclass(frozen=True)
class UpdateChat:
    """Rename a manual chat and/or open or close it (CH-3). A partial update: what is left out (``UNSET``) or
    null stays as it is (the schema loads a missing field as null, the gateway drops nulls)."""

    chat_id: uuid.UUID
    name: str | None = UNSET
    closed: bool | None = UNSET


class ChatUpdateInput(CommandSchema):
    command = UpdateChat
    name = fields.String(load_default=None, validate=validate.Length(min=1, max=100))
    closed = fields.Boolean(load_default=None)


class ChatInviteView(Schema):
    token = fields.String(required=True)
    url = fields.String(required=True, metadata={"description": "The link to share"})
    qr_url = fields.String(required=True, metadata={"description": "Its QR code (SVG; .png also served)"})


class ChatInvitePreview(Schema):
    chat_id = fields.UUID(required=True)
    name = fields.String(allow_none=True)
    organization_id = fields.UUID(allow_none=True)
    members = fields.Integer(required=True)


class ReportInput(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=1000))


class ReportView(Schema):
    report_id = fields.UUID(required=True)
    chat_id = fields.UUID(required=True)
    seq = fields.Integer(required=True)
    message_id = fields.UUID(required=True)
    author_id = fields.UUID(allow_none=True)
    text = fields.String(required=True, metadata={"description": "The message as it was when reported"})
    reported_by = fields.UUID(required=True)
    reason = fields.String(required=True)
    filed_at = fields.String(required=True)
    resolution = fields.String(allow_none=True)
    resolved_by = fields.UUID(allow_none=True)


class ResolutionInput(Schema):
    resolution = fields.String(required=True, validate=validate.OneOf(["dismissed", "message_removed"]))


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
    attachments = fields.List(fields.Nested(AttachmentView), required=True)
    poll = fields.Nested(PollView, allow_none=True)


class HistoryPage(Schema):
    items = fields.List(fields.Nested(MessageView), required=True)
    last_seq = fields.Integer(required=True)


class ReadInput(Schema):
    seq = fields.Integer(required=True, validate=validate.Range(min=0))


class ReadView(Schema):
    read_until = fields.Integer(required=True)


class ReaderView(Schema):
    user_id = fields.UUID(allow_none=True, metadata={
        "description": "Who read it; none: the organization (its admins read an inbox thread as one, CH-5)"})


class ReadersPage(Schema):
    """Who has read a message (CH-4): for its author and the chat's admins."""

    items = fields.List(fields.Nested(ReaderView), required=True)
    count = fields.Integer(required=True, metadata={"description": "How many have read it, on every page"})
    next_cursor = fields.String(allow_none=True, metadata={"description": "Pass as ?cursor= for the next page"})


# -- message search (issue #17) ---------------------------------------------------------------------------------

SEARCH_MAX_CHARS = 200
CHAT_FILTER_MAX_CHARS = 100  # GET /chats?q=: the words of a chat's name


def _has_text(value: str) -> bool:
    if not value.strip():
        raise ValidationError("Type something to search for.")
    return True


@dataclass(frozen=True)
class SearchMessages:
    """Messages with every word of ``q`` in one's chats (or in ``chat_id``), newest first, a page at a time."""

    q: str
    chat_id: uuid.UUID | None = None
    cursor: str | None = None
    limit: int = 20


class MessageSearchInput(CommandSchema):
    command = SearchMessages
    q = fields.String(required=True, validate=[validate.Length(min=1, max=SEARCH_MAX_CHARS), _has_text], metadata={
        "description": "Words to find, each as the start of a word or of its Russian stem ('уроки' finds 'урок'), "
                       "all of them in a message's text, its poll's question or its files' names",
        "example": "контрольная"})
    chat_id = fields.UUID(load_default=None, allow_none=True, metadata={"description": "Only this chat (a member's)"})
    cursor = Cursor()
    limit = Limit(20, 50)


class MessageHit(Schema):
    """A message found: the fields of a message in a chat's history, with its chat."""

    chat_id = fields.UUID(required=True)
    chat_name = fields.String(allow_none=True, metadata={"description": "None for a dialog"})
    chat_kind = fields.String(required=True)
    seq = fields.Integer(required=True, metadata={"description": "Its place in the chat: open the history there"})
    message_id = fields.UUID(required=True)
    author_id = fields.UUID(allow_none=True, metadata={"description": "None when the organization answered"})
    on_behalf_of = fields.UUID(allow_none=True)
    text = fields.String(required=True, metadata={"description": "The message's whole text as last edited"})
    poll_question = fields.String(allow_none=True)
    attachment_names = fields.List(fields.String(), required=True)
    posted_at = fields.String(required=True)
    edited_at = fields.String(allow_none=True)


class MessageSearchPage(Schema):
    items = fields.List(fields.Nested(MessageHit), required=True)
    next_cursor = fields.String(allow_none=True, metadata={"description": "Pass as ?cursor= for the next page"})
