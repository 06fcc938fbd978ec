"""The public API v1 for chats and messages (CH-*). Routes only; messaging decides
who may read and write where."""

from __future__ import annotations

import uuid

from marshmallow import Schema, fields, validate

from gateway.api import api, call, me
from gateway.endpoint import endpoint
from messaging import schemas as messaging

CHAT_ERRORS = ("chat.not_found", "chat.members_only")


class HistoryQuery(Schema):
    before = fields.Integer(load_default=None, metadata={"description": "Messages before this seq, newest first"})
    after = fields.Integer(load_default=None, metadata={"description": "Catch up: messages after this seq"})
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


class DirectInput(Schema):
    user_id = fields.UUID(required=True)


class InboxInput(Schema):
    organization_id = fields.UUID(required=True)


@api.get("/chats")
@endpoint(summary="One's chats with the last seq and unread count (CH-4)", tag="chats",
          response=messaging.ChatListItem, many=True)
def list_chats():
    return call("messaging", "chats", actor_id=me())


@api.post("/chats")
@endpoint(summary="Create a manual chat: name, optional members, closed or not (CH-3)", tag="chats",
          body=messaging.ChatInput, response=messaging.ChatView, status=201,
          errors=("chat.invalid_name", "chat.not_members", "organization.members_only"))
def create_chat(body: dict):
    return call("messaging", "create_chat", actor_id=me(), chat=messaging.ChatInput().dump(body))


@api.get("/chats/<uuid:chat_id>")
@endpoint(summary="A chat and its members", tag="chats", response=messaging.ChatView, errors=CHAT_ERRORS)
def get_chat(chat_id: uuid.UUID):
    return call("messaging", "get_chat", actor_id=me(), chat_id=str(chat_id))


@api.post("/chats/<uuid:chat_id>/members")
@endpoint(summary="Add members to a manual chat (CH-3); system chats follow rosters (CH-2)", tag="chats",
          body=messaging.MembersInput, response=messaging.ChatView,
          errors=(*CHAT_ERRORS, "chat.system_managed", "chat.closed"))
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
@endpoint(summary="The organization's inbox: every member's thread (admins, CH-5)", tag="chats",
          response=messaging.ChatView, many=True, errors=("organization.role_required",))
def organization_inbox(organization_id: uuid.UUID):
    return call("messaging", "inbox", actor_id=me(), organization_id=str(organization_id))


@api.get("/chats/<uuid:chat_id>/messages")
@endpoint(summary="History: newest first before a seq, or catch up after one (CH-4)", tag="messages",
          query=HistoryQuery, response=messaging.HistoryPage, errors=CHAT_ERRORS)
def chat_history(chat_id: uuid.UUID, query: dict):
    return call("messaging", "history", actor_id=me(), chat_id=str(chat_id), **query)


@api.post("/chats/<uuid:chat_id>/messages")
@endpoint(summary="Post a message, a reply, or (admins) on behalf of the organization (CH-4, CH-5)",
          tag="messages", body=messaging.MessageInput, response=messaging.MessageView, status=201,
          errors=(*CHAT_ERRORS, "message.invalid_text", "message.reply_not_found", "organization.role_required"))
def post_message(chat_id: uuid.UUID, body: dict):
    return call("messaging", "post", actor_id=me(), chat_id=str(chat_id),
                message=messaging.MessageInput().dump(body))


@api.put("/chats/<uuid:chat_id>/messages/<int:seq>")
@endpoint(summary="Edit one's message (CH-4)", tag="messages", body=messaging.EditInput,
          response=messaging.MessageView, errors=(*CHAT_ERRORS, "message.not_found", "message.not_yours",
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
