"""Messaging's aggregates (docs/rules.md CH-*).

- ``Chat``: kind, place (organization, class, subject), settings and members.
  System-managed chats (organization with "all participants", class, subject,
  the class teacher's three) take their members from rosters; nobody adds or
  removes them by hand (CH-2). ``ChatKey`` makes creating a system chat
  idempotent by its key.
- ``MessagePage``: a chat's history in pages of ``PAGE_SIZE`` messages, so a
  chat of 100,000 messages is read a page at a time; a message's ``seq`` is its
  place in the chat (page * PAGE_SIZE + index).
- ``ReadMark``: how far a member has read (unread counts).
- ``OrgRoster`` / ``ClassRoster``: messaging's own copy of school's members
  (projected from school's events), with the chats that follow each roster.
- ``UserChats``: a person's chats; ``DirectIndex``: the one dialog of two people.
- ``PersonName``: a person's name as identity reports it, and ``OrgRoster.name`` the organization's as school
  does: what the chat list's filter matches a dialog or an inbox thread by (the client names them so).
"""

from __future__ import annotations

import copy
import uuid
from datetime import datetime

from eventsourcing.domain import Aggregate, event

# The limits of messages and attachments are part of messaging's API contract (the gateway checks them too).
from shared.contracts import outdated
from shared.contracts.api.messaging import ATTACHMENT_KINDS, MAX_TEXT, POLL_OPTIONS, attachment_max_bytes
from shared.errors import Forbidden, Gone, Invalid, NotFound
from shared.uploads import is_executable

NAMESPACE = uuid.UUID("7c2b1a9e-45d3-4f6b-8e0a-1d9c3b5a7e21")
PAGE_SIZE = 100
SYSTEM_KINDS = ("organization", "class", "subject", "class_students", "class_parents", "class_colleagues")


def derived_id(kind: str, *parts: object) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, ":".join([kind, *map(str, parts)]))


class Chat(Aggregate):
    @event("Created")
    def __init__(self, kind: str, organization_id: uuid.UUID | None, name: str | None, created_by: uuid.UUID | None,
                 member_ids: list[str], class_id: uuid.UUID | None = None, subject: str | None = None,
                 key: str | None = None, closed: bool = False, all_participants: bool = False,
                 teacher_id: uuid.UUID | None = None):
        self.kind = kind
        self.teacher_id = teacher_id  # the subject teacher or class teacher of a system chat
        self.organization_id = organization_id
        self.class_id = class_id
        self.subject = subject
        self.name = name
        self.key = key
        self.created_by = created_by
        self.closed = closed
        self.all_participants = all_participants
        self.members: list[str] = list(dict.fromkeys(member_ids))
        self.pages = 1  # pages of history opened so far
        self.invite_id: uuid.UUID | None = None  # the live invite link (CH-3)

    @property
    def system(self) -> bool:
        return self.kind in SYSTEM_KINDS

    def is_member(self, user_id: uuid.UUID) -> bool:
        return str(user_id) in self.members

    def check_member(self, user_id: uuid.UUID) -> None:
        if not self.is_member(user_id):
            raise Forbidden("chat.members_only", "Only members of this chat can do this.")

    def check_manager(self, user_id: uuid.UUID) -> None:
        """CH-2: nobody manages a system chat's members by hand; CH-3: a closed
        manual chat is managed by its creator only. A non-member learns nothing of
        the chat, its kind included: the members-only refusal comes first."""
        self.check_member(user_id)
        if self.system:
            raise Forbidden("chat.system_managed", "Members of this chat follow the school's rosters.")
        if self.kind in ("direct", "inbox"):
            raise Forbidden("chat.fixed_members", "This chat's members cannot change.")
        if self.closed and user_id != self.created_by:
            raise Forbidden("chat.closed", "This chat is closed: only its creator manages it.")

    def sync(self, member_ids: list[str]) -> tuple[list[str], list[str]]:
        """Set the members to ``member_ids``; returns (added, removed)."""
        wanted = list(dict.fromkeys(member_ids))
        added = [m for m in wanted if m not in self.members]
        removed = [m for m in self.members if m not in wanted]
        if added or removed:
            self._members_changed(added, removed)
        return added, removed

    def add(self, member_ids: list[str]) -> list[str]:
        return self.sync(self.members + member_ids)[0]

    def remove(self, member_ids: list[str]) -> list[str]:
        return self.sync([m for m in self.members if m not in member_ids])[1]

    @event("MembersChanged")
    def _members_changed(self, added: list[str], removed: list[str]) -> None:
        # Only the difference is recorded: an organization chat of a thousand
        # members does not copy them all into every change.
        gone = set(removed)
        self.members = [m for m in self.members if m not in gone] + added

    @event("Renamed")
    def rename(self, name: str, closed: bool) -> None:
        self.name = name
        self.closed = closed

    @event("OrganizationSet")
    def set_organization(self, organization_id: uuid.UUID) -> None:
        """A system chat made before its journal school was bound to an organization becomes the organization's
        when the bind's resync tells it (EJ-2): its admins moderate it, its quotas and reports are the school's."""
        self.organization_id = organization_id

    @event("InviteSet")
    def set_invite(self, invite_id: uuid.UUID | None) -> None:
        self.invite_id = invite_id

    @event("PageOpened")
    def open_page(self) -> None:
        self.pages += 1


class ChatKey(Aggregate):
    """A system chat's key (e.g. ``subject:<class>:<subject>:<teacher>``) -> its chat."""

    @staticmethod
    def create_id(key: str, **_: object) -> uuid.UUID:
        return derived_id("chat-key", key)

    @event("Assigned")
    def __init__(self, key: str, chat_id: uuid.UUID):
        self.key = key
        self.chat_id = chat_id
        self.as_of = 0  # the bridge's log position of the newest member list applied (``stale``)

    def stale(self, as_of: int | None) -> bool:
        """Whether a member list read at that bridge log position is older than the one applied: several syncs
        of a class run at once, and a list read before an unlink reached messaging after it (a parent put back
        in the class's parents' chat). A list that does not say (from before) is applied as it comes."""
        return as_of is not None and as_of < getattr(self, "as_of", 0)

    @event("ListApplied")
    def applied(self, as_of: int) -> None:
        self.as_of = max(as_of, getattr(self, "as_of", 0))


class SentMessage(Aggregate):
    """A message posted with its client's id (the client's idempotency key): a retried POST finds the first
    message's seq here instead of posting again. Saved with the page in one save, so two posts of one key
    collide on this aggregate's creation (IntegrityError) and the retried loser reads the winner."""

    @staticmethod
    def create_id(chat_id: uuid.UUID, author_id: uuid.UUID, client_message_id: uuid.UUID, **_: object) -> uuid.UUID:
        return derived_id("sent", chat_id, author_id, client_message_id)

    @event("Recorded")
    def __init__(self, chat_id: uuid.UUID, author_id: uuid.UUID, client_message_id: uuid.UUID, seq: int):
        self.chat_id = chat_id
        self.author_id = author_id
        self.client_message_id = client_message_id
        self.seq = seq


def _posted_before_implied_reads(state: dict) -> None:
    """A Posted of version 1: it implied no read mark (the author's, if any, was its own published MessagesRead)."""
    state["read_by_author"] = False


def _read_before_implied_reads(state: dict) -> None:
    """A ReadMark.Read of version 1: published as MessagesRead whoever made it (a post's mark too)."""
    state["by_post"] = False


def _posted_before_read_from(state: dict) -> None:
    """A Posted of version 2: where its author's mark was before it is not known."""
    state["author_read_from"] = None


def _read_before_read_from(state: dict) -> None:
    """A ReadMark.Read of version 2: where the mark was before it is not known."""
    state["read_from"] = None


class MessagePage(Aggregate):
    """``PAGE_SIZE`` messages of one chat."""

    @staticmethod
    def create_id(chat_id: uuid.UUID, number: int, **_: object) -> uuid.UUID:
        return derived_id("page", chat_id, number)

    @event("Opened")
    def __init__(self, chat_id: uuid.UUID, number: int):
        self.chat_id = chat_id
        self.number = number
        self.messages: list[dict] = []

    def __deepcopy__(self, memo: dict) -> MessagePage:
        """The copy a command gets of the cached page (the store's aggregate cache hands each read its own deep copy,
        shared/store): its messages are JSON-like data, copied as such in about a third of ``copy.deepcopy``'s
        generic walk (1.5 vs 3.5 ms for a full page, once a turn of a chat's posts)."""
        copied = object.__new__(type(self))
        for name, value in vars(self).items():
            setattr(copied, name, _plain_copy(value) if name == "messages" else copy.deepcopy(value, memo))
        return copied

    @property
    def full(self) -> bool:
        return len(self.messages) >= PAGE_SIZE

    @property
    def next_seq(self) -> int:
        return self.number * PAGE_SIZE + len(self.messages)

    def message(self, seq: int) -> dict:
        index = seq - self.number * PAGE_SIZE
        if not 0 <= index < len(self.messages):
            raise NotFound("message.not_found", "No such message.")
        return self.messages[index]

    class Posted(Aggregate.Event):
        """A message. ``read_by_author``: the post also read the chat up to it for its author (a member's post:
        ``ReadMark.read(by_post=True)`` in the same save), so MessagePosted says so and no MessagesRead is published
        for that mark; False for a post that moves no mark (a call's recording, seeded history) and for those
        stored before it was said (version 1: their marks were published as MessagesRead). ``author_read_from``:
        with ``read_by_author``, the author's mark before the post (-1: none; None: not known, version 2)."""

        chat_id: uuid.UUID
        message_id: uuid.UUID
        seq: int
        author_id: uuid.UUID | None
        on_behalf_of: uuid.UUID | None
        text: str
        reply_to: int | None
        posted_at: datetime
        attachments: list[dict] | None
        poll: dict | None
        read_by_author: bool
        author_read_from: int | None
        class_version = 3
        upcast_v1_v2 = staticmethod(_posted_before_implied_reads)
        upcast_v2_v3 = staticmethod(_posted_before_read_from)

    def post(self, message_id: uuid.UUID, author_id: uuid.UUID | None, on_behalf_of: uuid.UUID | None, text: str,
             reply_to: int | None, posted_at: datetime, attachments: list[dict] | None = None,
             poll: dict | None = None, read_by_author: bool = False, author_read_from: int | None = None) -> int:
        seq = self.next_seq
        self._posted(self.chat_id, message_id, seq, author_id, on_behalf_of, text, reply_to, posted_at,
                     attachments or [], poll, read_by_author, author_read_from if read_by_author else None)
        return seq

    @event(Posted)
    def _posted(self, chat_id: uuid.UUID, message_id: uuid.UUID, seq: int, author_id: uuid.UUID | None,
                on_behalf_of: uuid.UUID | None, text: str, reply_to: int | None, posted_at: datetime,
                attachments: list[dict] | None = None, poll: dict | None = None, read_by_author: bool = False,
                author_read_from: int | None = None) -> None:
        self.messages.append({
            "seq": seq, "message_id": str(message_id), "author_id": str(author_id) if author_id else None,
            "on_behalf_of": str(on_behalf_of) if on_behalf_of else None, "text": text, "reply_to": reply_to,
            "posted_at": posted_at.isoformat(), "edited_at": None, "deleted": False,
            "attachments": list(attachments or []),
            "poll": {**poll, "votes": {}, "closed": False} if poll else None})

    def vote(self, seq: int, user_id: uuid.UUID, options: list[int]) -> dict:
        """A member's choice in a poll (CH-4): one option, or several in a
        multiple-choice poll; an empty choice withdraws the vote."""
        found = self.message(seq)
        poll = found.get("poll")
        if found["deleted"]:
            raise Gone("message.deleted", "This message was deleted.")
        if not poll:
            raise Invalid("poll.not_a_poll", "This message is not a poll.")
        if poll["closed"]:
            raise Gone("poll.closed", "This poll is closed.")
        chosen = sorted(set(options))
        if any(not 0 <= o < len(poll["options"]) for o in chosen):
            raise Invalid("poll.invalid_option", "No such option in this poll.",
                          {"options": len(poll["options"])})
        if len(chosen) > 1 and not poll["multiple"]:
            raise Invalid("poll.single_choice", "This poll takes one option.")
        if poll["votes"].get(str(user_id), []) != chosen:
            # The totals after this vote travel with it, so the event tells clients the
            # results without telling them who chose what.
            votes = {**poll["votes"], str(user_id): chosen}
            counts = [sum(o in v for v in votes.values()) for o in range(len(poll["options"]))]
            self._voted(self.chat_id, uuid.UUID(found["message_id"]), seq, user_id, chosen, counts,
                        len([v for v in votes.values() if v]))
        return found

    @event("Voted")
    def _voted(self, chat_id: uuid.UUID, message_id: uuid.UUID, seq: int, user_id: uuid.UUID,
               options: list[int], counts: list[int], voters: int) -> None:
        votes = self.message(seq)["poll"]["votes"]
        if options:
            votes[str(user_id)] = options
        else:
            votes.pop(str(user_id), None)

    def close_poll(self, seq: int, closed_by: uuid.UUID) -> None:
        found = self.message(seq)
        if not found.get("poll"):
            raise Invalid("poll.not_a_poll", "This message is not a poll.")
        if found["poll"]["closed"]:
            raise Gone("poll.closed", "This poll is closed.")
        self._poll_closed(self.chat_id, uuid.UUID(found["message_id"]), seq, closed_by)

    @event("PollClosed")
    def _poll_closed(self, chat_id: uuid.UUID, message_id: uuid.UUID, seq: int, closed_by: uuid.UUID) -> None:
        self.message(seq)["poll"]["closed"] = True

    def edit(self, seq: int, text: str, at: datetime) -> None:
        found = self.message(seq)
        if found["deleted"]:
            raise Gone("message.deleted", "This message was deleted.")
        self._edited(self.chat_id, uuid.UUID(found["message_id"]), seq, text, at)

    @event("Edited")
    def _edited(self, chat_id: uuid.UUID, message_id: uuid.UUID, seq: int, text: str, edited_at: datetime) -> None:
        found = self.message(seq)
        found["text"] = text
        found["edited_at"] = edited_at.isoformat()

    def delete(self, seq: int, deleted_by: uuid.UUID, at: datetime) -> None:
        found = self.message(seq)
        if found["deleted"]:
            raise Gone("message.deleted", "This message was already deleted.")
        on_behalf = found.get("on_behalf_of")
        self._deleted(self.chat_id, uuid.UUID(found["message_id"]), seq, deleted_by, at,
                      uuid.UUID(on_behalf) if on_behalf else None)

    @event("Deleted")
    def _deleted(self, chat_id: uuid.UUID, message_id: uuid.UUID, seq: int, deleted_by: uuid.UUID,
                 deleted_at: datetime, on_behalf_of: uuid.UUID | None = None) -> None:
        """``on_behalf_of``: the message was the organization's (CH-5), so is its deletion (the outbox names no
        admin); stored before it was said: None."""
        # The trace stays: "message deleted" with its time, without its text (CH-4).
        found = self.message(seq)
        found.update(text="", deleted=True, deleted_at=deleted_at.isoformat(), attachments=[], poll=None)


_ATOMIC = frozenset((str, int, float, bool, type(None)))


def _plain_copy(value: object) -> object:
    """A deep copy of JSON-like data (dicts, lists, str, numbers, None); anything else by ``copy.deepcopy``."""
    kind = type(value)
    if kind in _ATOMIC:
        return value
    if kind is dict:
        return {key: _plain_copy(item) for key, item in value.items()}  # type: ignore[attr-defined]
    if kind is list:
        return [_plain_copy(item) for item in value]  # type: ignore[attr-defined]
    return copy.deepcopy(value)


def check_text(text: str, required: bool = True) -> str:
    cleaned = text.strip()
    if (required and not cleaned) or len(cleaned) > MAX_TEXT:
        raise Invalid("message.invalid_text", f"A message has 1 to {MAX_TEXT} characters.")
    return cleaned


def check_attachment(kind: str, file_name: str, media_type: str, size: int) -> None:
    """CH-4: files, photos, audio and video recordings, voice messages, each within
    its types and size; executables are refused whatever they are called (the name is
    cleaned first: ``run.exe.`` is ``run.exe``) and whatever they are labelled."""
    if kind not in ATTACHMENT_KINDS:
        raise Invalid("attachment.invalid_kind", f"An attachment is one of: {', '.join(ATTACHMENT_KINDS)}.")
    allowed, _ = ATTACHMENT_KINDS[kind]
    media_type = media_type.split(";")[0].strip().lower()
    if is_executable(file_name, media_type) or (allowed is not None and media_type not in allowed):
        raise Invalid("attachment.type_not_allowed", f"This type of file cannot be sent as {kind}.",
                      {"kind": kind, "media_type": media_type,
                       "allowed": sorted(allowed) if allowed is not None else None})
    limit = attachment_max_bytes(kind)
    if size > limit:
        raise Invalid("attachment.too_large", f"A {kind} here is at most {limit} bytes.",
                      {"kind": kind, "max_bytes": limit})
    if size <= 0:
        raise Invalid("attachment.empty", "The file is empty.")


def check_poll(poll: dict) -> dict:
    question = (poll.get("question") or "").strip()
    options = [str(o).strip() for o in poll.get("options") or []]
    low, high = POLL_OPTIONS
    if not question or len(question) > 300:
        raise Invalid("poll.invalid_question", "A poll's question has 1 to 300 characters.")
    if not low <= len(options) <= high or any(not o or len(o) > 100 for o in options) or \
            len({o.casefold() for o in options}) != len(options):
        raise Invalid("poll.invalid_options", f"A poll has {low} to {high} different options of 1 to 100 characters.")
    return {"question": question, "options": options, "multiple": bool(poll.get("multiple"))}


class Attachment(Aggregate):
    """A file uploaded into a chat, waiting to be sent with a message, then part of it."""

    @event("Uploaded")
    def __init__(self, chat_id: uuid.UUID, uploaded_by: uuid.UUID, kind: str, file_name: str, media_type: str,
                 size: int, blob_key: str):
        self.chat_id = chat_id
        self.uploaded_by = uploaded_by
        self.kind = kind
        self.file_name = file_name
        self.media_type = media_type
        self.size = size
        self.blob_key = blob_key
        self.seq: int | None = None  # the message it was sent with

    def view(self) -> dict:
        return {"attachment_id": str(self.id), "kind": self.kind, "file_name": self.file_name,
                "media_type": self.media_type, "size": self.size}

    @event("Sent")
    def sent(self, seq: int) -> None:
        self.seq = seq


class ChatInvite(Aggregate):
    """An invite link to a manual chat (CH-3): its id makes the token; revoked or replaced, it stops working."""

    @event("Created")
    def __init__(self, chat_id: uuid.UUID, created_by: uuid.UUID):
        self.chat_id = chat_id
        self.created_by = created_by
        self.active = True

    @event("Revoked")
    def revoke(self) -> None:
        self.active = False


class Report(Aggregate):
    """A message reported to the school's admins (moderation)."""

    @event("Filed")
    def __init__(self, organization_ids: list[str], chat_id: uuid.UUID, seq: int, message_id: uuid.UUID,
                 author_id: uuid.UUID | None, text: str, reported_by: uuid.UUID, reason: str, filed_at: datetime):
        self.organization_ids = organization_ids
        self.chat_id = chat_id
        self.seq = seq
        self.message_id = message_id
        self.author_id = author_id
        self.text = text  # as it was when reported: an edit or deletion afterwards does not hide it
        self.reported_by = reported_by
        self.reason = reason
        self.filed_at = filed_at
        self.resolution: str | None = None
        self.resolved_by: uuid.UUID | None = None

    @event("Resolved")
    def resolve(self, resolution: str, resolved_by: uuid.UUID) -> None:
        self.resolution = resolution
        self.resolved_by = resolved_by


class ReadMark(Aggregate):
    @staticmethod
    def create_id(chat_id: uuid.UUID, user_id: uuid.UUID, **_: object) -> uuid.UUID:
        return derived_id("read", chat_id, user_id)

    @event("Opened")
    def __init__(self, chat_id: uuid.UUID, user_id: uuid.UUID):
        self.chat_id = chat_id
        self.user_id = user_id
        self.read_until = -1  # the last seq read

    class Read(Aggregate.Event):
        """Read up to ``seq``. ``by_post``: the member's own post made this mark (MessagePosted implies it, so it is
        not published as MessagesRead); False for a reader's mark-read and for marks stored before it was said
        (version 1, published as MessagesRead as they were). ``read_from``: the mark before it (-1: none), so
        what it newly read is (``read_from``, ``seq``]; None for those stored before it was said (version 2)."""

        seq: int
        chat_id: uuid.UUID | None
        user_id: uuid.UUID | None
        by_post: bool
        read_from: int | None
        class_version = 3
        upcast_v1_v2 = staticmethod(_read_before_implied_reads)
        upcast_v2_v3 = staticmethod(_read_before_read_from)

    def read(self, seq: int, by_post: bool = False) -> None:
        if seq > self.read_until:
            self._read(seq, self.chat_id, self.user_id, by_post, self.read_until)

    @event(Read)
    def _read(self, seq: int, chat_id: uuid.UUID | None = None, user_id: uuid.UUID | None = None,
              by_post: bool = False, read_from: int | None = None) -> None:
        self.read_until = max(self.read_until, seq)


class UserChats(Aggregate):
    """A person's chats, in the order they joined them. Not read by CH-1's shared-chat check any more (that reads
    the read model and confirms on the chats: ``Base.shared_chats``). It stays written because (1) leaving a
    school (CH-6, ``Rosters._leave_school_chats``) reads it inside the command and saves it (``left_school``) with
    the chats it leaves, and a command bringing people into a school's chat reads theirs before it checks the
    school's roster, so the two conflict whichever saves first and the retry sees the other -- a lagging read
    model there would err toward leaving the person in a school's chat; (2) the chat list's read model
    (``chat_members`` and its order) is projected from its Joined/Left events."""

    @staticmethod
    def create_id(user_id: uuid.UUID, **_: object) -> uuid.UUID:
        return derived_id("chats-of", user_id)

    @event("Opened")
    def __init__(self, user_id: uuid.UUID):
        self.chat_ids: list[str] = []

    @event("Joined")
    def join(self, chat_id: uuid.UUID) -> None:
        if str(chat_id) not in self.chat_ids:
            self.chat_ids.append(str(chat_id))

    @event("Left")
    def leave(self, chat_id: uuid.UUID) -> None:
        self.chat_ids = [c for c in self.chat_ids if c != str(chat_id)]

    @event("SchoolLeft")
    def left_school(self, organization_id: uuid.UUID) -> None:
        """The person left ``organization_id`` (CH-6): written whether or not they were in any of its chats, so a
        command bringing them into one, which read this list before it checked the school's roster, conflicts."""


class DirectIndex(Aggregate):
    """The one direct dialog of two people."""

    @staticmethod
    def create_id(a: uuid.UUID, b: uuid.UUID, **_: object) -> uuid.UUID:
        first, second = sorted((str(a), str(b)))
        return derived_id("direct", first, second)

    @event("Assigned")
    def __init__(self, a: uuid.UUID, b: uuid.UUID, chat_id: uuid.UUID):
        self.chat_id = chat_id


class PersonName(Aggregate):
    """A person's name as identity reports it (UserRegistered, ProfileUpdated; a parent's correction, PL-3): the
    name the web client shows for a dialog with them, or for their inbox thread to its admins. The newest report
    wins: events may arrive out of order."""

    @staticmethod
    def create_id(user_id: uuid.UUID, **_: object) -> uuid.UUID:
        return derived_id("person-name", user_id)

    @event("Named")
    def __init__(self, user_id: uuid.UUID, last_name: str | None, first_name: str | None, patronymic: str | None,
                 at: datetime):
        self.user_id = user_id
        self.names = [last_name, first_name, patronymic]
        self.named_at = at

    def rename(self, last_name: str | None, first_name: str | None, patronymic: str | None, at: datetime) -> bool:
        if at < self.named_at or [last_name, first_name, patronymic] == list(self.names):
            return False
        self._renamed(self.user_id, last_name, first_name, patronymic, at)
        return True

    @event("Renamed")
    def _renamed(self, user_id: uuid.UUID, last_name: str | None, first_name: str | None, patronymic: str | None,
                 at: datetime) -> None:
        self.names = [last_name, first_name, patronymic]
        self.named_at = at


def membership_turn(kept: int, sequence: int | None) -> str:
    """Where an event about a person's membership, of that version (``sequence``), stands against the version
    applied (``kept``, OrgRoster.membership_version): "older" (or the same: what it says is here already), "next"
    (the one after: apply it), "gap" (one before it has not come yet: it is still on its way, or held by a retry;
    applying it alone could leave a delta out, and the one still coming would undo it), or "unordered" (no
    sequence: an event published before events had one, applied as it comes, as before)."""
    if sequence is None:
        return "unordered"
    return "older" if outdated(sequence, kept) else "next" if sequence == kept + 1 else "gap"


def parent_classes_of(roles: list[str], class_id: uuid.UUID | str | None, said: list | None) -> list[str]:
    """The classes a person is a parent in (RO-5, PL-7) as school said them (``said``); not said (an event, or a
    roster, from before school said them): a parent's one class is their ``class_id``."""
    if "parent" not in roles:
        return []
    if said is not None:
        return [str(c) for c in said]
    return [str(class_id)] if class_id is not None else []


class OrgRoster(Aggregate):
    """An organization's members and roles, its settings, and its chats that follow the roster."""

    @staticmethod
    def create_id(organization_id: uuid.UUID, **_: object) -> uuid.UUID:
        return derived_id("org-roster", organization_id)

    @event("Opened")
    def __init__(self, organization_id: uuid.UUID):
        self.organization_id = organization_id
        self.members: dict[str, list[str]] = {}  # user id -> roles
        self.classes: dict[str, str] = {}  # user id -> class id (students, parents)
        self.teaching: dict[str, list[str]] = {}  # user id -> class ids taught
        self.settings: dict[str, bool] = {"student_dialogs_allowed": True}
        self.chat_ids: list[str] = []  # organization chats with "all participants"
        self.inbox: dict[str, str] = {}  # member id -> their inbox thread with the administration
        self.reports: list[str] = []  # reports of messages to the admins, oldest first
        self.versions: dict[str, int] = {}  # user id -> the school membership version applied (membership_turn)
        self.settings_version = 0  # the organization's version whose settings are applied (settings_outdated)

    def admins(self) -> list[str]:
        return [u for u, roles in self.members.items() if "admin" in roles]

    @event("MemberSet")
    def set_member(self, user_id: uuid.UUID, roles: list[str], class_id: uuid.UUID | None,
                   teaching: list[str], version: int | None = None, parent_classes: list[str] | None = None) -> None:
        """``version``: the person's school membership as of which this is (its events' ``sequence``); None in
        events from before it was kept, and from an event that did not say. ``parent_classes``: the classes they
        are a parent in (None: as kept)."""
        key = str(user_id)
        for table, value in ((self.members, roles), (self.classes, str(class_id) if class_id else None),
                             (self.teaching, teaching)):
            if value:
                table[key] = value
            else:
                table.pop(key, None)
        if parent_classes is not None:  # kept even when none: "no class" is not "not said" (parent_classes)
            self.__dict__.setdefault("parenting", {})[key] = list(parent_classes)
        if version is not None:
            self.__dict__.setdefault("versions", {})[key] = version

    def parent_classes(self, user_id: uuid.UUID) -> list[str]:
        """The classes the person is a parent in (RO-5, PL-7); kept from before: their one class, as a parent."""
        key = str(user_id)
        return parent_classes_of(self.members.get(key, []), self.classes.get(key),
                                 getattr(self, "parenting", {}).get(key))

    def membership_version(self, user_id: uuid.UUID) -> int:
        """The person's school membership version applied here (0: none yet, or from before versions)."""
        return getattr(self, "versions", {}).get(str(user_id), 0)

    @event("SettingsChanged")
    def change_settings(self, settings: dict[str, bool], version: int | None = None) -> None:
        """``version``: the organization's, as of which these are (None: not said)."""
        self.settings = {**self.settings, **settings}
        if version is not None:
            self.settings_version = version

    def settings_outdated(self, version: int | None) -> bool:
        """Whether settings of that organization version are older than (or as old as) those kept: the later
        report of an earlier save (a retry, a replay) would switch back what an admin has since changed."""
        return outdated(version, getattr(self, "settings_version", 0))

    @event("ChatFollowing")
    def follow(self, chat_id: uuid.UUID) -> None:
        if str(chat_id) not in self.chat_ids:
            self.chat_ids.append(str(chat_id))

    @event("InboxOpened")
    def open_inbox(self, member_id: uuid.UUID, chat_id: uuid.UUID) -> None:
        self.inbox[str(member_id)] = str(chat_id)

    @event("ReportReceived")
    def receive_report(self, report_id: uuid.UUID) -> None:
        self.reports.append(str(report_id))

    def rename(self, name: str, at: datetime) -> bool:
        """The organization's name as of ``at`` (school's OrganizationRegistered / OrganizationUpdated): an older
        report than the one kept (events may arrive out of order) or the same name changes nothing."""
        named_at = getattr(self, "named_at", None)  # rosters opened (and snapshotted) before names were kept
        if (named_at is not None and at < named_at) or (name == getattr(self, "name", None)):
            return False
        self._named(name, at)
        return True

    @event("Named")
    def _named(self, name: str, at: datetime) -> None:
        self.name, self.named_at = name, at


class ClassRoster(Aggregate):
    """A class: its students, their parents, its teachers with subjects, and the
    system chats that follow it (class chat, subject chats, the teacher's three)."""

    @staticmethod
    def create_id(class_id: uuid.UUID, **_: object) -> uuid.UUID:
        return derived_id("class-roster", class_id)

    @event("Opened")
    def __init__(self, class_id: uuid.UUID, organization_id: uuid.UUID | None):
        self.class_id = class_id
        self.organization_id = organization_id
        self.students: list[str] = []
        self.parents: list[str] = []
        self.teachers: dict[str, list[str]] = {}  # user id -> subjects
        self.chat_ids: list[str] = []

    @event("StudentSet")
    def set_student(self, user_id: uuid.UUID, present: bool) -> None:
        self.students = [s for s in self.students if s != str(user_id)] + ([str(user_id)] if present else [])

    @event("ParentSet")
    def set_parent(self, user_id: uuid.UUID, present: bool) -> None:
        self.parents = [p for p in self.parents if p != str(user_id)] + ([str(user_id)] if present else [])

    @event("TeacherSet")
    def set_teacher(self, user_id: uuid.UUID, subjects: list[str], teaches: bool | None = None) -> None:
        """The teacher's subjects here; none: no longer a teacher here, unless ``teaches`` (a class their invite
        named: taught, no subject stated yet, SC-7). Stored before ``teaches`` was said, no subjects was gone."""
        if subjects or teaches:
            self.teachers[str(user_id)] = subjects
        else:
            self.teachers.pop(str(user_id), None)

    @event("ChatFollowing")
    def follow(self, chat_id: uuid.UUID) -> None:
        if str(chat_id) not in self.chat_ids:
            self.chat_ids.append(str(chat_id))

    def members_for(self, chat: Chat) -> list[str]:
        """Who belongs to a system chat of this class, from the roster (CH-1, EJ-3)."""
        teacher = [str(chat.teacher_id)] if chat.teacher_id else []
        if chat.kind == "class":
            return self.students + list(self.teachers)
        if chat.kind == "subject":
            return teacher + self.students
        if chat.kind == "class_students":
            return teacher + self.students
        if chat.kind == "class_parents":
            return teacher + self.parents
        if chat.kind == "class_colleagues":
            return teacher + list(self.teachers)
        return chat.members
