"""The public API v1 for chats and messages (CH-*). Routes only; messaging decides
who may read and write where."""

from __future__ import annotations

import uuid

from flask import request
from marshmallow import Schema, fields, validate

from gateway.api import QR_FORMATS, QR_MEDIA_TYPES, api, call, me, public_url, qr_format, qr_response
from gateway.endpoint import endpoint, schema_of
from gateway.listing import ListQuery, listed
from gateway.uploads import receive_upload, send_blob
from shared.contracts.api import messaging
from shared.contracts.api.messaging import ATTACHMENT_KINDS, attachment_max_bytes
from shared.errors import Invalid
from shared.paging import Cursor, Limit, Seq

CHAT_ERRORS = ("chat.not_found", "chat.members_only")
# what adds to a chat (a message, an edit, a vote, a file): in a dialog, only while its two people may talk (CH-1)
WRITER_ERRORS = (*CHAT_ERRORS, "direct.no_shared_chat", "direct.students_not_allowed")


class ChatsQuery(ListQuery):
    # Checked by messaging (one place, its codes): longer than this chats.filter_too_long, no word in it
    # chats.filter_no_words.
    q = fields.String(load_default=None, metadata={
        "description": f"Only the chats whose name as the list shows it has a word starting with each word of q "
                       f"(case and ё folded), at most {messaging.CHAT_FILTER_MAX_CHARS} characters: a dialog's is the "
                       "other person's name, an inbox thread's its writer's (to the admins) or the school's (to the "
                       "writer)", "example": "5а мат"})


class HistoryQuery(Schema):
    before = Seq("Messages before this seq, newest first")
    after = Seq("Catch up: messages after this seq")
    limit = Limit(50, 200)


class DirectInput(Schema):
    user_id = fields.UUID(required=True)


class InboxInput(Schema):
    organization_id = fields.UUID(required=True)


class AttachmentForm(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(list(ATTACHMENT_KINDS)),
                         metadata={"description": "photo, voice, audio, video or file"})


class ReportsQuery(Schema):
    open_only = fields.Boolean(load_default=True)


def chat_invite_url(token: str) -> str:
    return public_url(f"/chat-invite/{token}")


def with_links(invite: dict) -> dict:
    token = invite["token"]
    return {"token": token, "url": chat_invite_url(token), "qr_url": f"/api/v1/chat-invites/{token}/qr.svg"}


@api.get("/chats")
@endpoint(summary="One's chats with the last seq and unread count, newest last seq first (CH-4); with ?limit= a "
                  "page, the next page's cursor in the X-Next-Cursor header; ?q= filters by name", tag="chats",
          query=ChatsQuery, response=messaging.ChatListItem, many=True,
          errors=("paging.invalid_cursor", "chats.filter_no_words", "chats.filter_too_long"))
def list_chats(query: dict):
    named = {} if query.get("q") is None else {"q": query["q"]}  # without q: the RPC as before
    return listed("messaging", "chats", query, actor_id=me(), **named)


@api.post("/chats")
@endpoint(summary="Create a manual chat: name, optional members, closed or not (CH-3)", tag="chats",
          body=messaging.ChatInput, response=messaging.ChatView, status=201,
          errors=("chat.invalid_name", "chat.not_members", "organization.members_only"))
def create_chat(body: dict):
    return call("messaging", "create_chat", actor_id=me(), chat=schema_of(messaging.ChatInput).dump(body))


@api.get("/chats/<uuid:chat_id>")
@endpoint(summary="A chat and its members", tag="chats", response=messaging.ChatView, errors=CHAT_ERRORS)
def get_chat(chat_id: uuid.UUID):
    return call("messaging", "get_chat", actor_id=me(), chat_id=str(chat_id))


@api.post("/chats/<uuid:chat_id>/members")
@endpoint(summary="Add members to a manual chat (CH-3); system chats follow rosters (CH-2)", tag="chats",
          body=messaging.MembersInput, response=messaging.ChatView,
          errors=(*CHAT_ERRORS, "chat.system_managed", "chat.closed", "chat.not_members", "chat.no_organization",
                  "organization.members_only"))
def add_chat_members(chat_id: uuid.UUID, body: dict):
    return call("messaging", "add_members", actor_id=me(), chat_id=str(chat_id),
                member_ids=[str(m) for m in body["member_ids"]])


@api.delete("/chats/<uuid:chat_id>/members/<uuid:user_id>")
@endpoint(summary="Leave a manual chat, or (its creator) remove a member", tag="chats",
          response=messaging.ChatView, errors=(*CHAT_ERRORS, "chat.system_managed", "chat.admins_only"))
def remove_chat_member(chat_id: uuid.UUID, user_id: uuid.UUID):
    return call("messaging", "remove_member", actor_id=me(), chat_id=str(chat_id), member_id=str(user_id))


@api.post("/direct-chats")
@endpoint(summary="The dialog with someone you share a chat with (CH-1)", tag="chats", body=DirectInput,
          response=messaging.ChatView, errors=("direct.no_shared_chat", "direct.students_not_allowed"))
def direct_chat(body: dict):
    return call("messaging", "direct", actor_id=me(), other_id=str(body["user_id"]))


@api.post("/inbox-threads")
@endpoint(summary="\"Write to the administration\": one's thread with the organization (CH-5)", tag="chats",
          body=InboxInput, response=messaging.ChatView, errors=("organization.members_only",))
def inbox_thread(body: dict):
    return call("messaging", "inbox_thread", actor_id=me(), organization_id=str(body["organization_id"]))


@api.get("/organizations/<uuid:organization_id>/inbox")
@endpoint(summary="The organization's inbox: every member's thread in the order they opened (admins, CH-5); with "
                  "?limit= a page, the next page's cursor in the X-Next-Cursor header", tag="chats", query=ListQuery,
          response=messaging.ChatView, many=True, errors=("organization.role_required", "paging.invalid_cursor"))
def organization_inbox(organization_id: uuid.UUID, query: dict):
    return listed("messaging", "inbox", query, actor_id=me(), organization_id=str(organization_id))


@api.get("/chats/<uuid:chat_id>/messages")
@endpoint(summary="History: newest first before a seq, or catch up after one (CH-4)", tag="messages",
          query=HistoryQuery, response=messaging.HistoryPage, errors=CHAT_ERRORS)
def chat_history(chat_id: uuid.UUID, query: dict):
    return call("messaging", "history", actor_id=me(), chat_id=str(chat_id), **query)


@api.post("/chats/<uuid:chat_id>/messages")
@endpoint(summary="Post a message, a reply, or (admins) on behalf of the organization (CH-4, CH-5)",
          tag="messages", body=messaging.MessageInput, response=messaging.MessageView, status=201,
          errors=(*WRITER_ERRORS, "message.invalid_text", "message.reply_not_found", "organization.role_required"))
def post_message(chat_id: uuid.UUID, body: dict):
    """A retry with the same ``client_message_id`` (or ``Idempotency-Key`` header, a UUID) answers the first."""
    header = request.headers.get("Idempotency-Key")
    if header and body.get("client_message_id") is None:
        try:
            body = {**body, "client_message_id": uuid.UUID(header.strip())}
        except ValueError:
            raise Invalid("request.invalid", "The Idempotency-Key header must be a UUID.",
                          {"fields": {"Idempotency-Key": ["Not a valid UUID."]}}) from None
    return call("messaging", "post", actor_id=me(), chat_id=str(chat_id),
                message=schema_of(messaging.MessageInput).dump(body))


@api.put("/chats/<uuid:chat_id>/messages/<int:seq>")
@endpoint(summary="Edit one's message (CH-4)", tag="messages", body=messaging.EditInput,
          response=messaging.MessageView, errors=(*WRITER_ERRORS, "message.not_found", "message.not_yours",
                                                  "message.deleted"))
def edit_message(chat_id: uuid.UUID, seq: int, body: dict):
    return call("messaging", "edit", actor_id=me(), chat_id=str(chat_id), seq=seq, text=body["text"])


@api.delete("/chats/<uuid:chat_id>/messages/<int:seq>")
@endpoint(summary="Delete a message: its author, a manual chat's creator or a school admin; a trace stays",
          tag="messages", response=messaging.MessageView,
          errors=(*CHAT_ERRORS, "message.not_found", "message.not_yours", "message.deleted"))
def delete_message(chat_id: uuid.UUID, seq: int):
    return call("messaging", "delete", actor_id=me(), chat_id=str(chat_id), seq=seq)


@api.put("/chats/<uuid:chat_id>/read")
@endpoint(summary="Mark the chat read up to a seq (CH-4)", tag="messages", body=messaging.ReadInput,
          response=messaging.ReadView, errors=CHAT_ERRORS)
def mark_read(chat_id: uuid.UUID, body: dict):
    return call("messaging", "mark_read", actor_id=me(), chat_id=str(chat_id), seq=body["seq"])


class ReadersQuery(Schema):
    cursor = Cursor()
    limit = Limit(50, 200)


@api.get("/chats/<uuid:chat_id>/messages/<int:seq>/readers")
@endpoint(summary="Who has read a message: the members whose read mark is at or after it; for its author and the "
                  "chat's admins, paged (CH-4)", tag="messages", query=ReadersQuery, response=messaging.ReadersPage,
          errors=(*CHAT_ERRORS, "message.not_found", "message.readers_forbidden", "paging.invalid_cursor"))
def readers(chat_id: uuid.UUID, seq: int, query: dict):
    return call("messaging", "readers", actor_id=me(), chat_id=str(chat_id), seq=seq, cursor=query["cursor"],
                limit=query["limit"])


@api.get("/messages/search")
@endpoint(summary="Find messages by words in one's chats (or one chat), newest first, a page at a time: each word as "
                  "the start of a word or of its Russian stem (issue #17)", tag="messages",
          query=messaging.MessageSearchInput, response=messaging.MessageSearchPage,
          errors=(*CHAT_ERRORS, "search.no_words", "paging.invalid_cursor"))
def search_messages(query: dict):
    return call("messaging", "search_messages", actor_id=me(),
                command=schema_of(messaging.MessageSearchInput).dump(query))


@api.patch("/chats/<uuid:chat_id>")
@endpoint(summary="Rename a manual chat; its creator opens or closes it (CH-3)", tag="chats",
          body=messaging.ChatUpdateInput, response=messaging.ChatView,
          errors=(*CHAT_ERRORS, "chat.system_managed", "chat.closed", "chat.creator_only", "chat.invalid_name"))
def update_chat(chat_id: uuid.UUID, body: dict):
    return call("messaging", "update_chat", actor_id=me(), chat_id=str(chat_id),
                changes={k: v for k, v in body.items() if v is not None})


# -- invite links to manual chats (CH-3) -------------------------------------------------------------------

@api.post("/chats/<uuid:chat_id>/invite")
@endpoint(summary="A new invite link (and QR) to a manual chat; the previous one stops working (CH-3)",
          tag="chats", response=messaging.ChatInviteView, status=201,
          errors=(*CHAT_ERRORS, "chat.system_managed", "chat.closed", "chat.fixed_members"))
def create_chat_invite(chat_id: uuid.UUID):
    return with_links(call("messaging", "create_invite", actor_id=me(), chat_id=str(chat_id)))


@api.get("/chats/<uuid:chat_id>/invite")
@endpoint(summary="The chat's live invite link", tag="chats", response=messaging.ChatInviteView,
          errors=(*CHAT_ERRORS, "invite.not_found", "chat.system_managed", "chat.closed"))
def current_chat_invite(chat_id: uuid.UUID):
    return with_links(call("messaging", "current_invite", actor_id=me(), chat_id=str(chat_id)))


@api.delete("/chats/<uuid:chat_id>/invite")
@endpoint(summary="Revoke the chat's invite link", tag="chats", status=204,
          errors=(*CHAT_ERRORS, "invite.not_found", "chat.system_managed", "chat.closed"))
def revoke_chat_invite(chat_id: uuid.UUID):
    call("messaging", "revoke_invite", actor_id=me(), chat_id=str(chat_id))


@api.get("/chat-invites/<token>")
@endpoint(summary="Open a chat's invite link: its name and size before joining", tag="chats",
          response=messaging.ChatInvitePreview, errors=("invite.not_found",))
def preview_chat_invite(token: str):
    return call("messaging", "invite_preview", token=token)


@api.get("/chat-invites/<token>/qr.<fmt>")
@endpoint(summary="A chat's invite link as a QR code: qr.svg or qr.png (CH-3)", tag="chats", auth=False,
          produces=QR_MEDIA_TYPES, path_enums=QR_FORMATS, errors=("invite.not_found", "qr.unknown_format"))
def chat_invite_qr(token: str, fmt: str):
    qr_format(fmt)
    call("messaging", "invite_preview", token=token)  # only live links are drawn
    return qr_response(fmt, chat_invite_url(token))


@api.post("/chat-invites/<token>/membership")
@endpoint(summary="Join a chat by its invite link (CH-3)", tag="chats", response=messaging.ChatView, status=201,
          errors=("invite.not_found", "organization.members_only"))
def join_chat_by_invite(token: str):
    return call("messaging", "join_by_invite", actor_id=me(), token=token)


# -- attachments and polls (CH-4) -----------------------------------------------------------------------------

@api.post("/chats/<uuid:chat_id>/attachments")
@endpoint(summary="Upload a file to send: photo, voice, audio, video or file, within its type and size (CH-4)",
          tag="messages", body=AttachmentForm, consumes="multipart/form-data", response=messaging.AttachmentView,
          max_bytes=lambda: max(attachment_max_bytes(kind) for kind in ATTACHMENT_KINDS),
          status=201, errors=(*WRITER_ERRORS, "file.missing", "file.too_large", "upload.quota_exceeded",
                              "attachment.type_not_allowed", "attachment.too_large", "attachment.empty"))
def upload_attachment(chat_id: uuid.UUID, body: dict):
    chat, kind = str(chat_id), body["kind"]
    allowance = call("messaging", "upload_allowance", actor_id=me(), chat_id=chat, kind=kind)
    return receive_upload(allowance, lambda **file: call("messaging", "upload_attachment", actor_id=me(),
                                                         chat_id=chat, kind=kind, **file))


@api.get("/chats/<uuid:chat_id>/attachments/<uuid:attachment_id>")
@endpoint(summary="Download an attachment (members of the chat)", tag="messages",
          produces="*/*", errors=(*CHAT_ERRORS, "attachment.not_found", "message.deleted"))
def download_attachment(chat_id: uuid.UUID, attachment_id: uuid.UUID):
    return send_blob(call("messaging", "attachment_download", actor_id=me(), chat_id=str(chat_id),
                          attachment_id=str(attachment_id)))


@api.put("/chats/<uuid:chat_id>/messages/<int:seq>/vote")
@endpoint(summary="Vote in a poll: one option, several in a multiple-choice poll, none to withdraw (CH-4)",
          tag="messages", body=messaging.VoteInput, response=messaging.MessageView,
          errors=(*WRITER_ERRORS, "message.not_found", "poll.not_a_poll", "poll.invalid_option", "poll.single_choice",
                  "poll.closed", "message.deleted"))
def vote(chat_id: uuid.UUID, seq: int, body: dict):
    return call("messaging", "vote", actor_id=me(), chat_id=str(chat_id), seq=seq, options=body["options"])


@api.post("/chats/<uuid:chat_id>/messages/<int:seq>/poll-closure")
@endpoint(summary="Close a poll: its author or a moderator; the results stay", tag="messages",
          response=messaging.MessageView,
          errors=(*CHAT_ERRORS, "message.not_found", "poll.not_a_poll", "poll.closed", "message.not_yours"))
def close_poll(chat_id: uuid.UUID, seq: int):
    return call("messaging", "close_poll", actor_id=me(), chat_id=str(chat_id), seq=seq)


# -- reports to the school's admins (moderation) -----------------------------------------------------------------

@api.post("/chats/<uuid:chat_id>/messages/<int:seq>/reports")
@endpoint(summary="Report a message to the school's admins", tag="moderation", body=messaging.ReportInput,
          response=messaging.ReportView, status=201,
          errors=(*CHAT_ERRORS, "message.not_found", "message.deleted", "report.own_message", "report.no_school"))
def report_message(chat_id: uuid.UUID, seq: int, body: dict):
    return call("messaging", "report", actor_id=me(), chat_id=str(chat_id), seq=seq, reason=body["reason"])


@api.get("/organizations/<uuid:organization_id>/reports")
@endpoint(summary="Reported messages, newest first (admins)", tag="moderation", query=ReportsQuery,
          response=messaging.ReportView, many=True, errors=("organization.role_required",))
def list_reports(organization_id: uuid.UUID, query: dict):
    return call("messaging", "reports", actor_id=me(), organization_id=str(organization_id), **query)


@api.post("/reports/<uuid:report_id>/resolution")
@endpoint(summary="Resolve a report: dismiss it or remove the message (admins)", tag="moderation",
          body=messaging.ResolutionInput, response=messaging.ReportView,
          errors=("report.not_found", "report.resolved"))
def resolve_report(report_id: uuid.UUID, body: dict):
    return call("messaging", "resolve_report", actor_id=me(), report_id=str(report_id),
                resolution=body["resolution"])
