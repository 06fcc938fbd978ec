"""messaging's nameko entrypoints: school's events build rosters and system chats;
RPC for chats and messages. ``actor_id`` is the gateway's verified token subject."""

from __future__ import annotations

import eventlet
from nameko.extensions import DependencyProvider

from messaging import handlers
from messaging.application import MessagingApplication
from messaging.domain import Chat
from shared.bus.consumer import consume_event
from shared.consistency import asking
from shared.contracts import CloudEvent
from shared.contracts.api import messaging as schemas
from shared.contracts.api import one as schema
from shared.errors import NotFound
from shared.links import link_id_from_token, link_token
from shared.rpc import TransientRpcProxy
from shared.service import EventSourcedApp, Observability, rpc, to_id


def invite_id(token: str):
    found = link_id_from_token("chat", token)
    if found is None:
        raise NotFound("invite.not_found", "This invite link does not work any more.")
    return found


def report_view(report) -> dict:
    return schema(schemas.ReportView).dump({**vars(report), "report_id": report.id,
                                            "filed_at": report.filed_at.isoformat()})


def chat_view(chat: Chat, member_ids: list[str] | None = None, **read_alone: object) -> dict:
    """The chat with ``member_ids`` (what the viewer may see of them), all members by default; ``read_alone``:
    what only a chat read alone says (``read_only_reason``)."""
    return schema(schemas.ChatView).dump({**vars(chat), "chat_id": chat.id, "system": chat.system,
                                    "member_ids": chat.members if member_ids is None else member_ids,
                                    **read_alone})


SCHOOL_ASKED_FOR = 10.0  # seconds an event handler waits for school's membership_state


class AskSchool(DependencyProvider):
    """Per entrypoint: school, the owner of memberships, for the application to ask when its rosters would refuse
    someone who may just have joined (read-your-writes, shared/consistency.py), and when an event of a
    membership came before an earlier one of it (Rosters._membership_now). Asked only on those paths."""

    def worker_setup(self, worker_ctx) -> None:
        school = worker_ctx.service.school  # injected before any worker_setup

        def school_membership(user_id, organization_id) -> dict | None:
            for found in school.my_organizations(actor_id=str(user_id)):
                if str(found["organization"]["organization_id"]) == str(organization_id):
                    return found["membership"]
            return None

        def school_membership_state(organization_id, user_id) -> dict:
            # bounded: a request or reply the broker lost (shared/rpc.py: not persistent) would wait for ever in a
            # service's event handler; a TimeoutError retries the event instead (the consumer's back-off)
            with eventlet.Timeout(SCHOOL_ASKED_FOR, TimeoutError("school did not say the membership in time")):
                return school.membership_state(organization_id=str(organization_id), user_id=str(user_id))

        worker_ctx.sfera_asking = asking(school_membership=school_membership,
                                         school_membership_state=school_membership_state)
        worker_ctx.sfera_asking.__enter__()

    def worker_teardown(self, worker_ctx) -> None:
        if getattr(worker_ctx, "sfera_asking", None) is not None:
            worker_ctx.sfera_asking.__exit__(None, None, None)


class MessagingService:
    name = "messaging"
    # A post waits for its chat's turn in a worker of its own (shared.group_commit): at 200 posts/s over 5 chats
    # 10 workers were all taken (bench.messaging_trace: up to 10 posts under way, the rest queued at the broker,
    # "to worker" p50 1.6-2.5 s); with 40, at most 16 were under way. Waiting costs a green thread, no connection.
    max_workers = 40

    app: MessagingApplication = EventSourcedApp(MessagingApplication)
    school = TransientRpcProxy("school")
    ask_school = AskSchool()
    observability = Observability()

    # -- people's names from identity (the chat list's filter) -----------------------------------
    @consume_event("identity.UserRegistered.v1")
    def on_user_registered(self, event: CloudEvent) -> bool:
        return handlers.on_user_registered(self.app, event)

    @consume_event("identity.ProfileUpdated.v1")
    def on_profile_updated(self, event: CloudEvent) -> bool:
        return handlers.on_profile_updated(self.app, event)

    # -- rosters from school (CH-1, CH-2) -----------------------------------------------------
    @consume_event("school.OrganizationRegistered.v1")
    def on_organization_registered(self, event: CloudEvent) -> bool:
        return handlers.on_organization_registered(self.app, event)

    @consume_event("school.OrganizationUpdated.v1")
    def on_organization_updated(self, event: CloudEvent) -> bool:
        return handlers.on_organization_updated(self.app, event)

    @consume_event("school.ClassCreated.v1")
    def on_class_created(self, event: CloudEvent) -> bool:
        return handlers.on_class_created(self.app, event)

    @consume_event("school.MemberJoined.v1")
    def on_member_joined(self, event: CloudEvent) -> bool:
        return handlers.on_member_joined(self.app, event)

    @consume_event("school.MemberRoleChanged.v1")
    def on_member_role_changed(self, event: CloudEvent) -> bool:
        return handlers.on_member_role_changed(self.app, event)

    @consume_event("school.MemberLeft.v1")
    def on_member_left(self, event: CloudEvent) -> bool:
        return handlers.on_member_left(self.app, event)

    @consume_event("school.TeacherAssigned.v1")
    def on_teacher_assigned(self, event: CloudEvent) -> bool:
        return handlers.on_teacher_assigned(self.app, event)

    # -- calls (CA-6) ------------------------------------------------------------------------------------
    @consume_event("calls.RecordingReady.v1")
    def on_recording_ready(self, event: CloudEvent) -> bool:
        return handlers.on_recording_ready(self.app, event)

    # -- the e-journal bridge's command (CH-2, EJ-3, EJ-4) ------------------------------------------
    @rpc
    def ensure_system_chat(self, request: dict) -> dict:
        return chat_view(self.app.ensure_system_chat(schema(schemas.SystemChatInput).load_command(request)))

    @rpc
    def define_system_chats(self, chats: list[dict]) -> list[dict]:
        """The e-journal bridge's command: chats by key with the members it computed (idempotent)."""
        return self.app.define_system_chats(schema(schemas.SystemChatSpec, many=True).load_command(chats))

    # -- chats ---------------------------------------------------------------------------------------
    @rpc
    def chats(self, actor_id: str, cursor: str | None = None, limit: int | None = None, q: str | None = None
              ) -> list[dict] | dict:
        """One's chats, newest last seq first (CH-4), from the read model: all of them as a list; with ``limit``
        (or ``cursor``) a page, ``{"items", "next_cursor"}``; ``q``: only the chats whose shown name has a word
        starting with each of its words."""
        paged = limit is not None or cursor is not None
        items, next_cursor = self.app.chat_list(to_id(actor_id), cursor,
                                                max(1, min(limit or 50, 200)) if paged else None, q)
        dumped = schema(schemas.ChatListItem, many=True).dump(items)
        return {"items": dumped, "next_cursor": next_cursor} if paged else dumped

    @rpc
    def get_chat(self, actor_id: str, chat_id: str) -> dict:
        chat = self.app.chat(to_id(chat_id, "chat.not_found"))
        self.app.check_member(chat, to_id(actor_id))
        return self._view(chat, actor_id)

    @rpc
    def chat_by_key(self, actor_id: str, key: str) -> dict:
        return chat_view(self.app.chat_by_key(to_id(actor_id), key))

    @rpc
    def create_chat(self, actor_id: str, chat: dict) -> dict:
        return chat_view(self.app.create_chat(to_id(actor_id), schema(schemas.ChatInput).load_command(chat)))

    @rpc
    def add_members(self, actor_id: str, chat_id: str, member_ids: list[str]) -> dict:
        return chat_view(self.app.add_members(to_id(actor_id), to_id(chat_id, "chat.not_found"),
                                              [to_id(m) for m in member_ids]))

    @rpc
    def remove_member(self, actor_id: str, chat_id: str, member_id: str) -> dict:
        return chat_view(self.app.remove_member(to_id(actor_id), to_id(chat_id, "chat.not_found"),
                                                to_id(member_id)))

    @rpc
    def update_chat(self, actor_id: str, chat_id: str, changes: dict) -> dict:
        return chat_view(self.app.update_chat(to_id(actor_id), schema(schemas.ChatUpdateInput).load_command(
            changes, chat_id=to_id(chat_id, "chat.not_found"))))

    # -- invite links (CH-3) ---------------------------------------------------------------------
    @rpc
    def create_invite(self, actor_id: str, chat_id: str) -> dict:
        invite = self.app.create_invite(to_id(actor_id), to_id(chat_id, "chat.not_found"))
        return {"token": link_token("chat", invite.id)}

    @rpc
    def current_invite(self, actor_id: str, chat_id: str) -> dict:
        invite = self.app.current_invite(to_id(actor_id), to_id(chat_id, "chat.not_found"))
        return {"token": link_token("chat", invite.id)}

    @rpc
    def revoke_invite(self, actor_id: str, chat_id: str) -> None:
        self.app.revoke_invite(to_id(actor_id), to_id(chat_id, "chat.not_found"))

    @rpc
    def invite_preview(self, token: str) -> dict:
        chat = self.app.invited_chat(invite_id(token))
        return schema(schemas.ChatInvitePreview).dump({"chat_id": chat.id, "name": chat.name,
                                             "organization_id": chat.organization_id, "members": len(chat.members)})

    @rpc
    def join_by_invite(self, actor_id: str, token: str) -> dict:
        return chat_view(self.app.join_by_invite(to_id(actor_id), invite_id(token)))

    @rpc
    def direct(self, actor_id: str, other_id: str) -> dict:
        return chat_view(self.app.direct(to_id(actor_id), to_id(other_id)))

    @rpc
    def inbox_thread(self, actor_id: str, organization_id: str) -> dict:
        def school_says_member() -> bool:  # read-your-writes right after joining (shared/consistency.py)
            return any(str(o["organization"]["organization_id"]) == str(organization_id)
                       for o in self.school.my_organizations(actor_id=actor_id))

        return self._view(self.app.inbox_thread(to_id(actor_id), to_id(organization_id, "organization.not_found"),
                                                school_says_member), actor_id)

    @rpc
    def inbox(self, actor_id: str, organization_id: str, cursor: str | None = None,
              limit: int | None = None) -> list[dict] | dict:
        """The organization's inbox threads in the order they opened, from the read model: all of them as a list;
        with ``limit`` (or ``cursor``) a page, ``{"items", "next_cursor"}``."""
        paged = limit is not None or cursor is not None
        items, next_cursor = self.app.inbox_page(to_id(actor_id), to_id(organization_id), cursor,
                                                 max(1, min(limit or 50, 200)) if paged else None)
        dumped = schema(schemas.ChatView, many=True).dump(items)
        return {"items": dumped, "next_cursor": next_cursor} if paged else dumped

    # -- messages --------------------------------------------------------------------------------------
    @rpc
    def post(self, actor_id: str, chat_id: str, message: dict) -> dict:
        command = schema(schemas.MessageInput).load_command(message, chat_id=to_id(chat_id, "chat.not_found"))
        return schema(schemas.MessageView).dump(self.app.post(to_id(actor_id), command))

    @rpc
    def upload_allowance(self, actor_id: str, chat_id: str, kind: str) -> dict:
        return self.app.upload_allowance(to_id(actor_id), to_id(chat_id, "chat.not_found"), kind)

    @rpc
    def upload_attachment(self, actor_id: str, chat_id: str, kind: str, file_name: str, media_type: str, size: int,
                          blob_key: str) -> dict:
        return schema(schemas.AttachmentView).dump(self.app.upload_attachment(
            to_id(actor_id), to_id(chat_id, "chat.not_found"), kind, file_name, media_type, size, blob_key).view())

    @rpc
    def attachment_download(self, actor_id: str, chat_id: str, attachment_id: str) -> dict:
        found = self.app.attachment(to_id(actor_id), to_id(chat_id, "chat.not_found"),
                                    to_id(attachment_id, "attachment.not_found"))
        return {**schema(schemas.AttachmentView).dump(found.view()), "blob_key": found.blob_key}

    @rpc
    def vote(self, actor_id: str, chat_id: str, seq: int, options: list[int]) -> dict:
        return schema(schemas.MessageView).dump(self.app.vote(to_id(actor_id), to_id(chat_id, "chat.not_found"), seq,
                                                        options))

    @rpc
    def close_poll(self, actor_id: str, chat_id: str, seq: int) -> dict:
        return schema(schemas.MessageView).dump(self.app.close_poll(to_id(actor_id), to_id(chat_id, "chat.not_found"),
                                                                    seq))

    # -- reports (moderation) ---------------------------------------------------------------------------
    @rpc
    def report(self, actor_id: str, chat_id: str, seq: int, reason: str) -> dict:
        return report_view(self.app.report(to_id(actor_id), to_id(chat_id, "chat.not_found"), seq, reason))

    @rpc
    def reports(self, actor_id: str, organization_id: str, open_only: bool = True) -> list[dict]:
        return [report_view(r) for r in self.app.reports(to_id(actor_id), to_id(organization_id), open_only)]

    @rpc
    def resolve_report(self, actor_id: str, report_id: str, resolution: str) -> dict:
        return report_view(self.app.resolve_report(to_id(actor_id), to_id(report_id, "report.not_found"),
                                                   resolution))

    @rpc
    def edit(self, actor_id: str, chat_id: str, seq: int, text: str) -> dict:
        return schema(schemas.MessageView).dump(self.app.edit(to_id(actor_id), to_id(chat_id, "chat.not_found"), seq,
                                                        text))

    @rpc
    def delete(self, actor_id: str, chat_id: str, seq: int) -> dict:
        return schema(schemas.MessageView).dump(self.app.delete(to_id(actor_id), to_id(chat_id, "chat.not_found"), seq))

    @rpc
    def history(self, actor_id: str, chat_id: str, before: int | None = None, after: int | None = None,
                limit: int = 50) -> dict:
        items, last = self.app.history(to_id(actor_id), to_id(chat_id, "chat.not_found"), before, after,
                                       max(1, min(limit, 200)))
        return schema(schemas.HistoryPage).dump({"items": items, "last_seq": last})

    @rpc
    def search_messages(self, actor_id: str, command: dict) -> dict:
        """Messages found by words in one's chats or one chat, newest first (issue #17; messaging.search)."""
        items, next_cursor = self.app.search_messages(to_id(actor_id),
                                                      schema(schemas.MessageSearchInput).load_command(command))
        return schema(schemas.MessageSearchPage).dump({"items": items, "next_cursor": next_cursor})

    @rpc
    def mark_read(self, actor_id: str, chat_id: str, seq: int) -> dict:
        return {"read_until": self.app.mark_read(to_id(actor_id), to_id(chat_id, "chat.not_found"), seq)}

    @rpc
    def readers(self, actor_id: str, chat_id: str, seq: int, cursor: str | None = None, limit: int = 50) -> dict:
        """Who has read a message (its author and the chat's admins ask)."""
        return schema(schemas.ReadersPage).dump(self.app.readers(to_id(actor_id), to_id(chat_id, "chat.not_found"), seq,
                                                           cursor, max(1, min(limit, 200))))

    def _view(self, chat: Chat, actor_id: str) -> dict:
        return chat_view(chat, self.app.members_seen_by(chat, to_id(actor_id)),
                         read_only_reason=self.app.dialog_refusal(chat))

    @rpc
    def check_writer(self, actor_id: str, chat_id: str) -> None:
        """For calls: whether this person may add to the chat now (a call started in a dialog, CH-1), refused as a
        message would be."""
        self.app.check_writer(self.app.chat(to_id(chat_id, "chat.not_found")), to_id(actor_id))

    @rpc
    def audience(self, chat_id: str) -> dict:
        """For the gateway's realtime fan-out: who receives this chat's events, and the
        members whom only they themselves may see named (CH-5: the admins of an inbox
        thread, hidden from the person who wrote)."""
        chat = self.app.chat(to_id(chat_id, "chat.not_found"))
        return {"members": list(chat.members), "concealed": sorted(self.app.concealed(chat))}

    @rpc
    def members_of(self, chat_id: str) -> list[str]:
        """For calls: who may be in a call of this chat now: its members; nobody in a dialog its two may no longer
        talk in (CH-1: a teacher the school removed stayed in a running one-to-one call with a pupil)."""
        chat = self.app.chat(to_id(chat_id, "chat.not_found"))
        return [] if self.app.dialog_refusal(chat) else list(chat.members)
