"""Which of messaging's domain events become integration events (mapping only)."""

from __future__ import annotations

from collections.abc import Iterable

from messaging.domain import Chat, MessagePage, ReadMark, Report

Published = tuple[str, dict, str | None]


def to_integration_events(e: object) -> Iterable[Published]:
    if isinstance(e, Chat.Created):
        yield "messaging.ChatCreated.v1", {
            "chat_id": e.originator_id, "kind": e.kind, "organization_id": e.organization_id,
            "class_id": e.class_id, "subject": e.subject, "name": e.name, "key": e.key,
            "member_ids": list(dict.fromkeys(e.member_ids)), "created_by": e.created_by,
            "created_at": e.timestamp}, str(e.originator_id)
    elif isinstance(e, Chat.MembersChanged):
        yield "messaging.ChatMembersChanged.v1", {
            "chat_id": e.originator_id, "added": e.added, "removed": e.removed, "changed_at": e.timestamp,
        }, str(e.originator_id)
    elif isinstance(e, Chat.Renamed):
        yield "messaging.ChatUpdated.v1", {
            "chat_id": e.originator_id, "name": e.name, "closed": e.closed, "updated_at": e.timestamp,
        }, str(e.originator_id)
    elif isinstance(e, MessagePage.Posted):
        poll = getattr(e, "poll", None)
        yield "messaging.MessagePosted.v1", {
            "chat_id": e.chat_id, "message_id": e.message_id, "seq": e.seq,
            # CH-5: which admin answered on behalf of the organization is not published.
            "author_id": None if e.on_behalf_of else e.author_id,
            "on_behalf_of": e.on_behalf_of, "text": e.text, "reply_to": e.reply_to, "posted_at": e.posted_at,
            "attachments": list(getattr(e, "attachments", None) or []),
            "poll": {**poll, "counts": [0] * len(poll["options"]), "voters": 0, "closed": False} if poll else None,
            # a member's post read the chat up to it for its author: said here, not in a MessagesRead of its own
            "read_by_author": e.read_by_author,
            # where that mark was before (what the post newly read: after it up to seq); not one admin's (CH-5)
            "author_read_from": None if e.on_behalf_of else e.author_read_from,
        }, str(e.chat_id)
    elif isinstance(e, MessagePage.Voted):
        yield "messaging.PollVoted.v1", {
            "chat_id": e.chat_id, "message_id": e.message_id, "seq": e.seq, "counts": e.counts, "voters": e.voters,
            "voted_at": e.timestamp}, str(e.chat_id)
    elif isinstance(e, MessagePage.PollClosed):
        yield "messaging.PollClosed.v1", {
            "chat_id": e.chat_id, "message_id": e.message_id, "seq": e.seq, "closed_at": e.timestamp,
        }, str(e.chat_id)
    elif isinstance(e, ReadMark.Read) and not e.by_post:  # a post's mark: its MessagePosted implies it
        yield "messaging.MessagesRead.v1", {
            "chat_id": e.chat_id, "user_id": e.user_id, "read_until": e.seq, "read_at": e.timestamp,
            "read_from": e.read_from,
        }, str(e.chat_id)
    elif isinstance(e, Report.Filed):
        yield "messaging.MessageReported.v1", {
            "report_id": e.originator_id, "organization_ids": e.organization_ids, "chat_id": e.chat_id,
            "seq": e.seq, "message_id": e.message_id, "reported_by": e.reported_by, "reason": e.reason,
            "filed_at": e.filed_at}, str(e.chat_id)
    elif isinstance(e, MessagePage.Edited):
        yield "messaging.MessageEdited.v1", {
            "chat_id": e.chat_id, "message_id": e.message_id, "seq": e.seq, "text": e.text,
            "edited_at": e.edited_at}, str(e.chat_id)
    elif isinstance(e, MessagePage.Deleted):
        yield "messaging.MessageDeleted.v1", {
            "chat_id": e.chat_id, "message_id": e.message_id, "seq": e.seq,
            # CH-5: the organization's message is taken back by the organization, not by an admin named
            "deleted_by": None if getattr(e, "on_behalf_of", None) else e.deleted_by,
            "on_behalf_of": getattr(e, "on_behalf_of", None), "deleted_at": e.deleted_at}, str(e.chat_id)
