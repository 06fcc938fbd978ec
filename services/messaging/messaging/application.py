"""Messaging's application: chats, messages, read state, rosters (docs/rules.md CH-*).

Who may read and write a chat is decided here. Writes to one chat take turns
inside the process (a keyed lock) and race on aggregate versions across
processes (optimistic concurrency, retried).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from messaging.domain import (
    PAGE_SIZE,
    Attachment,
    Chat,
    ChatInvite,
    ChatKey,
    ClassRoster,
    DirectIndex,
    MessagePage,
    OrgRoster,
    ReadMark,
    Report,
    UserChats,
    check_attachment,
    check_poll,
    check_text,
)
from shared.clock import utcnow
from shared.consistency import AskOwner, confirmed
from shared.contracts import CloudEvent
from shared.contracts.api.messaging import ATTACHMENT_KINDS, MAX_ATTACHMENTS, attachment_max_bytes
from shared.errors import Conflict, Forbidden, Gone, Invalid, NotFound
from shared.store import ServiceApplication, command, once_per_event
from shared.uploads import Quotas, clean_file_name, quota_exceeded

T = TypeVar("T")
CLASS_CHAT_KINDS = ("class", "subject", "class_students", "class_parents", "class_colleagues")


def poll_results(poll: dict, viewer: uuid.UUID | None = None) -> dict:
    counts = [0] * len(poll["options"])
    for chosen in poll["votes"].values():
        for option in chosen:
            counts[option] += 1
    return {"question": poll["question"], "options": poll["options"], "multiple": poll["multiple"],
            "closed": poll["closed"], "counts": counts, "voters": len(poll["votes"]),
            "my_choice": poll["votes"].get(str(viewer), []) if viewer else []}



class MessagingApplication(ServiceApplication):
    name = "messaging"
    snapshotting_intervals = {MessagePage: 200, Chat: 100, OrgRoster: 100, ClassRoster: 100, UserChats: 100,
                              ReadMark: 100}

    # -- helpers ------------------------------------------------------------------
    def chat(self, chat_id: uuid.UUID) -> Chat:
        found = self.find(Chat, chat_id)
        if found is None:
            raise NotFound("chat.not_found", "No such chat.")
        return found

    def _user_chats(self, user_id: str | uuid.UUID, pending: dict) -> UserChats:
        aggregate_id = UserChats.create_id(uuid.UUID(str(user_id)))
        if aggregate_id not in pending:
            pending[aggregate_id] = self.find(UserChats, aggregate_id) or UserChats(user_id=uuid.UUID(str(user_id)))
        return pending[aggregate_id]

    def _new_chat(self, pending: dict, **kwargs: Any) -> Chat:
        chat = Chat(**kwargs)
        pending[chat.id] = chat
        pending[MessagePage.create_id(chat.id, 0)] = MessagePage(chat_id=chat.id, number=0)
        for member in chat.members:
            self._user_chats(member, pending).join(chat.id)
        return chat

    def _sync(self, chat: Chat, member_ids: list[str], pending: dict) -> None:
        added, removed = chat.sync(member_ids)
        pending[chat.id] = chat
        for member in added:
            self._user_chats(member, pending).join(chat.id)
        for member in removed:
            self._user_chats(member, pending).leave(chat.id)

    def _org_roster(self, organization_id: uuid.UUID, pending: dict) -> OrgRoster:
        aggregate_id = OrgRoster.create_id(organization_id)
        if aggregate_id not in pending:
            pending[aggregate_id] = self.find(OrgRoster, aggregate_id) or OrgRoster(organization_id=organization_id)
        return pending[aggregate_id]

    def _class_roster(self, class_id: uuid.UUID, organization_id: uuid.UUID | None, pending: dict) -> ClassRoster:
        aggregate_id = ClassRoster.create_id(class_id)
        if aggregate_id not in pending:
            pending[aggregate_id] = self.find(ClassRoster, aggregate_id) or ClassRoster(
                class_id=class_id, organization_id=organization_id)
        return pending[aggregate_id]

    def _resync_class(self, roster: ClassRoster, pending: dict) -> None:
        for chat_id in roster.chat_ids:
            chat = pending.get(uuid.UUID(chat_id)) or self.chat(uuid.UUID(chat_id))
            self._sync(chat, roster.members_for(chat), pending)

    def _resync_org(self, roster: OrgRoster, pending: dict) -> None:
        for chat_id in roster.chat_ids:
            chat = pending.get(uuid.UUID(chat_id)) or self.chat(uuid.UUID(chat_id))
            if chat.all_participants:
                self._sync(chat, list(roster.members), pending)

    # -- rosters, from school's events (CH-1, CH-2) ------------------------------------------
    @once_per_event
    def _apply(self, event: CloudEvent, key: Any, change: Callable[[dict], None]) -> bool:
        """Apply a roster event once: ``change`` fills ``pending`` with what to save."""

        def command() -> bool:
            pending: dict = {}
            change(pending)
            return self.process_once(event.id, *pending.values())

        return self.retrying(command, key)

    def on_organization_registered(self, event: CloudEvent) -> bool:
        """Every organization gets its chat, with "all participants" on (CH-1)."""
        data = event.data

        def change(pending: dict) -> None:
            roster = self._org_roster(data["organization_id"], pending)
            if roster.chat_ids:
                return
            chat = self._new_chat(pending, kind="organization", organization_id=data["organization_id"],
                                  name=data["name"], created_by=None, member_ids=list(roster.members),
                                  key=f"organization:{data['organization_id']}", all_participants=True)
            roster.follow(chat.id)

        return self._apply(event, ("org", data["organization_id"]), change)

    def on_organization_updated(self, event: CloudEvent) -> bool:
        data = event.data

        def change(pending: dict) -> None:
            self._org_roster(data["organization_id"], pending).change_settings(data.get("settings") or {})

        return self._apply(event, ("org", data["organization_id"]), change)

    def on_class_created(self, event: CloudEvent) -> bool:
        """Every class gets its class chat: its students and teachers (CH-1)."""
        data = event.data

        def change(pending: dict) -> None:
            roster = self._class_roster(data["class_id"], data["organization_id"], pending)
            chat = self._new_chat(pending, kind="class", organization_id=data["organization_id"], name=data["name"],
                                  created_by=None, member_ids=[], class_id=data["class_id"],
                                  key=f"class:{data['class_id']}")
            roster.follow(chat.id)
            self._resync_class(roster, pending)

        return self._apply(event, ("class", data["class_id"]), change)

    def on_membership(self, event: CloudEvent) -> bool:
        """MemberJoined / MemberRoleChanged / MemberLeft: the person's roles and class
        as they are now; every chat that follows these rosters is brought in line."""
        data = event.data
        organization_id, user_id = data["organization_id"], data["user_id"]
        left = event.contract.name == "MemberLeft"
        roles: list[str] = [] if left else (data.get("roles") or [data["role"]])
        class_id = None if left else data.get("class_id")

        def change(pending: dict) -> None:
            org = self._org_roster(organization_id, pending)
            key = str(user_id)
            previous_class = org.classes.get(key)
            previous_teaching = set(org.teaching.get(key, []))
            teaching = set((data.get("subjects") or {}) if "teacher" in roles else {})
            org.set_member(user_id, roles, class_id, sorted(teaching))
            self._resync_org(org, pending)
            for cid in {c for c in (previous_class, str(class_id) if class_id else None) if c}:
                roster = self._class_roster(uuid.UUID(cid), organization_id, pending)
                here = class_id is not None and cid == str(class_id)
                roster.set_student(user_id, here and "student" in roles)
                roster.set_parent(user_id, here and "parent" in roles)
                self._resync_class(roster, pending)
            for cid in previous_teaching - teaching:
                roster = self._class_roster(uuid.UUID(cid), organization_id, pending)
                roster.set_teacher(user_id, [])
                self._resync_class(roster, pending)
            if left:
                self._leave_school_chats(user_id, organization_id, pending)

        return self._apply(event, ("org", organization_id), change)

    def _leave_school_chats(self, user_id: uuid.UUID, organization_id: uuid.UUID, pending: dict) -> None:
        """CH-6: whoever leaves a school leaves its manual chats and the inbox threads
        they answered as an admin; their own inbox thread and dialogs stay theirs."""
        for chat_id in list(self._user_chats(user_id, pending).chat_ids):
            chat = pending.get(uuid.UUID(chat_id)) or self.chat(uuid.UUID(chat_id))
            if str(chat.organization_id) != str(organization_id):
                continue
            if chat.kind == "manual" or (chat.kind == "inbox" and str(chat.created_by) != str(user_id)):
                self._sync(chat, [m for m in chat.members if m != str(user_id)], pending)

    def on_teacher_assigned(self, event: CloudEvent) -> bool:
        data = event.data

        def change(pending: dict) -> None:
            org = self._org_roster(data["organization_id"], pending)
            key = str(data["user_id"])
            teaching = sorted({*org.teaching.get(key, []), str(data["class_id"])})
            org.set_member(data["user_id"], org.members.get(key, ["teacher"]), org.classes.get(key), teaching)
            roster = self._class_roster(data["class_id"], data["organization_id"], pending)
            roster.set_teacher(data["user_id"], data["subjects"])
            self._resync_class(roster, pending)

        return self._apply(event, ("org", data["organization_id"]), change)

    # -- system chats on request (the e-journal bridge's command, CH-2, EJ-3, EJ-4) --------------
    def ensure_system_chat(self, kind: str, organization_id: uuid.UUID, class_id: uuid.UUID, teacher_id: uuid.UUID,
                           subject: str | None = None, name: str | None = None) -> Chat:
        """The subject chat of (class, subject, teacher) or one of the class teacher's
        three chats; asking again returns the same chat (idempotent by its key)."""
        if kind not in CLASS_CHAT_KINDS[1:]:
            raise Invalid("chat.invalid_kind", "subject, class_students, class_parents or class_colleagues.")
        if kind == "subject" and not subject:
            raise Invalid("chat.subject_required", "A subject chat names its subject.")
        key = f"{kind}:{class_id}:{(subject or '').casefold()}:{teacher_id}"

        def command() -> Chat:
            existing = self.find(ChatKey, ChatKey.create_id(key))
            if existing is not None:
                return self.chat(existing.chat_id)
            pending: dict = {}
            roster = self._class_roster(class_id, organization_id, pending)
            chat = self._new_chat(pending, kind=kind, organization_id=organization_id, name=name or subject,
                                  created_by=None, member_ids=[], class_id=class_id, subject=subject, key=key,
                                  teacher_id=teacher_id)
            pending[ChatKey.create_id(key)] = ChatKey(key=key, chat_id=chat.id)
            roster.follow(chat.id)
            self._sync(chat, roster.members_for(chat), pending)
            self.save(*pending.values())
            return chat

        return self.retrying(command, ("class", class_id))

    def define_system_chats(self, specs: list[dict]) -> list[dict]:
        """The e-journal bridge's command (CH-2, EJ-3, EJ-4): each chat by its key, with
        the members the bridge computed from the journal and the links. Creates the chat
        the first time, then only brings name and members in line: asking twice is once.
        ``{"key": k, "retire": true}`` empties a chat whose owner left (its history stays)."""
        results = []
        for spec in specs:
            key = spec["key"]

            def command(spec: dict = spec, key: str = key) -> dict:
                existing = self.find(ChatKey, ChatKey.create_id(key))
                pending: dict = {}
                members = [] if spec.get("retire") else list(dict.fromkeys(map(str, spec["member_ids"])))
                if existing is None:
                    if spec.get("retire"):
                        return {"key": key, "chat_id": None, "added": [], "removed": []}
                    if spec["kind"] not in CLASS_CHAT_KINDS[1:]:
                        raise Invalid("chat.invalid_kind", "subject, class_students, class_parents or "
                                                           "class_colleagues.")
                    chat = self._new_chat(pending, kind=spec["kind"], organization_id=spec.get("organization_id"),
                                          name=spec.get("name"), created_by=None, member_ids=members,
                                          class_id=spec.get("class_id"), subject=spec.get("subject"), key=key,
                                          teacher_id=spec.get("teacher_id"))
                    pending[ChatKey.create_id(key)] = ChatKey(key=key, chat_id=chat.id)
                    self.save(*pending.values())
                    return {"key": key, "chat_id": str(chat.id), "added": members, "removed": []}
                chat = self.chat(existing.chat_id)
                before = set(chat.members)
                self._sync(chat, members, pending)
                if not spec.get("retire") and spec.get("name") and spec["name"] != chat.name:
                    chat.rename(spec["name"], chat.closed)
                    pending[chat.id] = chat
                if pending:
                    self.save(*pending.values())
                return {"key": key, "chat_id": str(chat.id), "added": sorted(set(members) - before),
                        "removed": sorted(before - set(members))}

            results.append(self.retrying(command, ("chat-key", key)))
        return results

    def chat_by_key(self, actor_id: uuid.UUID, key: str) -> Chat:
        """A system chat by its key, for its members (EJ-7: opened from the e-journal's lesson page)."""
        found = self.find(ChatKey, ChatKey.create_id(key))
        if found is None:
            raise NotFound("chat.not_found", "This lesson has no chat yet: its teacher has not linked the journal.")
        chat = self.chat(found.chat_id)
        chat.check_member(actor_id)
        return chat

    # -- manual chats and dialogs (CH-1, CH-3) -----------------------------------------------------------
    @command
    def create_chat(self, actor_id: uuid.UUID, organization_id: uuid.UUID | None, name: str,
                    member_ids: list[uuid.UUID], closed: bool) -> Chat:
        """A manual chat (CH-3) belongs to a school: its creator and members are the
        school's members, so no stranger reaches a child through it (CH-6)."""
        if not name.strip() or len(name) > 100:
            raise Invalid("chat.invalid_name", "A chat name has 1 to 100 characters.")
        if organization_id is None:
            raise Invalid("chat.organization_required", "A chat belongs to a school: name its organization_id.")
        self._check_school_members(organization_id, actor_id, member_ids)
        pending: dict = {}
        chat = self._new_chat(pending, kind="manual", organization_id=organization_id, name=name.strip(),
                              created_by=actor_id, member_ids=[str(actor_id), *map(str, member_ids)], closed=closed)
        self.save(*pending.values())
        return chat

    def _check_school_members(self, organization_id: uuid.UUID | None, actor_id: uuid.UUID,
                              member_ids: list[uuid.UUID]) -> None:
        """CH-6: only a member of the chat's school brings people in, and only the
        school's members: never someone of another school, nor an id nobody has.
        A chat of no school (made before chats belonged to one) takes nobody new."""
        if organization_id is None:
            raise Forbidden("chat.no_organization", "This chat belongs to no school: nobody new can join it.")
        roster = self.find(OrgRoster, OrgRoster.create_id(organization_id))
        if roster is None or str(actor_id) not in roster.members:
            raise Forbidden("organization.members_only", "Only members of this organization can do this.")
        outsiders = [str(m) for m in member_ids if str(m) not in roster.members]
        if outsiders:
            raise Invalid("chat.not_members", "Everyone added must belong to the organization.",
                          {"user_ids": outsiders})

    def add_members(self, actor_id: uuid.UUID, chat_id: uuid.UUID, member_ids: list[uuid.UUID]) -> Chat:
        def command() -> Chat:
            chat = self.chat(chat_id)
            chat.check_manager(actor_id)
            self._check_school_members(chat.organization_id, actor_id, member_ids)
            pending: dict = {}
            self._sync(chat, chat.members + [str(m) for m in member_ids], pending)
            self.save(*pending.values())
            return chat

        return self.retrying(command, ("chat", chat_id))

    def remove_member(self, actor_id: uuid.UUID, chat_id: uuid.UUID, member_id: uuid.UUID) -> Chat:
        """Moderation: the creator of a manual chat (CH-3) removes members; anyone may leave."""
        def command() -> Chat:
            chat = self.chat(chat_id)
            chat.check_member(actor_id)  # a non-member learns nothing of the chat (its kind included)
            if member_id != actor_id:
                chat.check_manager(actor_id)
                if not chat.closed and actor_id != chat.created_by:
                    raise Forbidden("chat.admins_only", "Only the chat's creator removes other members.")
            elif chat.system or chat.kind in ("direct", "inbox"):
                raise Forbidden("chat.system_managed", "Members of this chat follow the school's rosters.")
            chat.check_member(member_id)
            pending: dict = {}
            self._sync(chat, [m for m in chat.members if m != str(member_id)], pending)
            self.save(*pending.values())
            return chat

        return self.retrying(command, ("chat", chat_id))

    def update_chat(self, actor_id: uuid.UUID, chat_id: uuid.UUID, name: str | None, closed: bool | None) -> Chat:
        """Rename a manual chat or open/close it; closing and opening is its creator's (CH-3)."""
        def command() -> Chat:
            chat = self.chat(chat_id)
            chat.check_manager(actor_id)
            if closed is not None and closed != chat.closed and actor_id != chat.created_by:
                raise Forbidden("chat.creator_only", "Only the chat's creator opens or closes it.")
            new_name = chat.name if name is None else name.strip()
            if not new_name or len(new_name) > 100:
                raise Invalid("chat.invalid_name", "A chat name has 1 to 100 characters.")
            new_closed = chat.closed if closed is None else closed
            if (new_name, new_closed) != (chat.name, chat.closed):
                chat.rename(new_name, new_closed)
                self.save(chat)
            return chat

        return self.retrying(command, ("chat", chat_id))

    # -- invite links to manual chats (CH-3) -----------------------------------------------------------
    def create_invite(self, actor_id: uuid.UUID, chat_id: uuid.UUID) -> ChatInvite:
        """A new invite link; the previous one stops working."""
        def command() -> ChatInvite:
            chat = self.chat(chat_id)
            chat.check_manager(actor_id)
            changed: list[Any] = []
            if chat.invite_id is not None:
                previous = self.find(ChatInvite, chat.invite_id)
                if previous is not None and previous.active:
                    previous.revoke()
                    changed.append(previous)
            invite = ChatInvite(chat_id=chat_id, created_by=actor_id)
            chat.set_invite(invite.id)
            self.save(chat, invite, *changed)
            return invite

        return self.retrying(command, ("chat", chat_id))

    def current_invite(self, actor_id: uuid.UUID, chat_id: uuid.UUID) -> ChatInvite:
        chat = self.chat(chat_id)
        chat.check_manager(actor_id)
        if chat.invite_id is None:
            raise NotFound("invite.not_found", "This chat has no invite link.")
        return self.find(ChatInvite, chat.invite_id)

    def revoke_invite(self, actor_id: uuid.UUID, chat_id: uuid.UUID) -> None:
        def command() -> None:
            chat = self.chat(chat_id)
            chat.check_manager(actor_id)
            if chat.invite_id is None:
                raise NotFound("invite.not_found", "This chat has no invite link.")
            invite = self.find(ChatInvite, chat.invite_id)
            invite.revoke()
            chat.set_invite(None)
            self.save(chat, invite)

        self.retrying(command, ("chat", chat_id))

    def invited_chat(self, invite_id: uuid.UUID) -> Chat:
        invite = self.find(ChatInvite, invite_id)
        if invite is None or not invite.active:
            raise NotFound("invite.not_found", "This invite link does not work any more.")
        return self.chat(invite.chat_id)

    def join_by_invite(self, actor_id: uuid.UUID, invite_id: uuid.UUID) -> Chat:
        """Join a manual chat by its link; a school's chat takes members of that school only (CH-6)."""
        chat_id = self.invited_chat(invite_id).id

        def command() -> Chat:
            chat = self.invited_chat(invite_id)
            if chat.is_member(actor_id):
                return chat
            self._check_school_members(chat.organization_id, actor_id, [])
            pending: dict = {}
            self._sync(chat, chat.members + [str(actor_id)], pending)
            self.save(*pending.values())
            return chat

        return self.retrying(command, ("chat", chat_id))

    # -- reports to the school's admins (moderation) ------------------------------------------------------
    def report(self, actor_id: uuid.UUID, chat_id: uuid.UUID, seq: int, reason: str) -> Report:
        """Anyone in a chat reports a message to the admins of the chat's school (for a
        dialog: of every school both people belong to)."""
        reason = reason.strip()
        if not 1 <= len(reason) <= 1000:
            raise Invalid("report.invalid_reason", "Say in 1 to 1000 characters what is wrong.")
        chat = self.chat(chat_id)
        chat.check_member(actor_id)
        message = self._page_of(chat_id, seq).message(seq)
        if message["deleted"]:
            raise Gone("message.deleted", "This message was deleted.")
        author = message["author_id"]
        if author == str(actor_id):
            raise Invalid("report.own_message", "You cannot report your own message.")
        if chat.organization_id is not None:
            organizations = [str(chat.organization_id)]
        else:
            organizations = sorted({str(c.organization_id) for c in self.shared_chats(actor_id, uuid.UUID(author))
                                    if c.organization_id is not None}) if author else []
        if not organizations:
            raise Invalid("report.no_school", "This chat belongs to no school to report to.")

        def command() -> Report:
            pending: dict = {}
            report = Report(organization_ids=organizations, chat_id=chat_id, seq=seq,
                            message_id=uuid.UUID(message["message_id"]),
                            author_id=uuid.UUID(author) if author else None, text=message["text"],
                            reported_by=actor_id, reason=reason, filed_at=utcnow())
            for organization in organizations:
                self._org_roster(uuid.UUID(organization), pending).receive_report(report.id)
            self.save(report, *pending.values())
            return report

        return self.retrying(command, ("org", organizations[0]))

    def reports(self, admin_id: uuid.UUID, organization_id: uuid.UUID, open_only: bool = True) -> list[Report]:
        roster = self._admin_roster(admin_id, organization_id)
        found = [self.find(Report, uuid.UUID(r)) for r in reversed(roster.reports)]
        return [r for r in found if r is not None and not (open_only and r.resolution)]

    def resolve_report(self, admin_id: uuid.UUID, report_id: uuid.UUID, resolution: str) -> Report:
        """An admin dismisses a report or removes the message (a trace stays)."""
        if resolution not in ("dismissed", "message_removed"):
            raise Invalid("report.invalid_resolution", "dismissed or message_removed.")

        def command() -> Report:
            report = self.find(Report, report_id)
            if report is None or not any(self._admin_of(admin_id, uuid.UUID(o)) for o in report.organization_ids):
                raise NotFound("report.not_found", "No such report.")
            if report.resolution:
                raise Conflict("report.resolved", "This report is already resolved.",
                               {"resolution": report.resolution})
            if resolution == "message_removed":
                page = self._page_of(report.chat_id, report.seq)
                if not page.message(report.seq)["deleted"]:
                    page.delete(report.seq, admin_id, utcnow())
                    self.save(page)
            report.resolve(resolution, admin_id)
            self.save(report)
            return report

        return self.retrying(command, ("report", report_id))

    def _admin_of(self, user_id: uuid.UUID, organization_id: uuid.UUID) -> bool:
        roster = self.find(OrgRoster, OrgRoster.create_id(organization_id))
        return roster is not None and "admin" in roster.members.get(str(user_id), [])

    def _admin_roster(self, admin_id: uuid.UUID, organization_id: uuid.UUID) -> OrgRoster:
        roster = self.find(OrgRoster, OrgRoster.create_id(organization_id))
        if roster is None or "admin" not in roster.members.get(str(admin_id), []):
            raise Forbidden("organization.role_required", "Only the organization's admins do this.")
        return roster

    def shared_chats(self, a: uuid.UUID, b: uuid.UUID) -> list[Chat]:
        mine = self.find(UserChats, UserChats.create_id(a))
        return [c for c in (self.chat(uuid.UUID(i)) for i in (mine.chat_ids if mine else []))
                if c.is_member(b) and c.kind not in ("direct", "inbox")]

    def direct(self, actor_id: uuid.UUID, other_id: uuid.UUID) -> Chat:
        """CH-1: a dialog only between people who share a chat; a school may forbid
        dialogs between its students."""
        if actor_id == other_id:
            raise Invalid("direct.self", "A dialog needs two people.")
        index = self.find(DirectIndex, DirectIndex.create_id(actor_id, other_id))
        if index is not None:
            return self.chat(index.chat_id)
        shared = self.shared_chats(actor_id, other_id)
        if not shared:
            raise Forbidden("direct.no_shared_chat", "You can write to people you share a chat with.")
        allowed = False
        for chat in shared:
            roster = self.find(OrgRoster, OrgRoster.create_id(chat.organization_id)) if chat.organization_id \
                else None
            both_students = roster is not None and all(
                roster.members.get(str(p)) == ["student"] for p in (actor_id, other_id))
            if not (both_students and not roster.settings.get("student_dialogs_allowed", True)):
                allowed = True
                break
        if not allowed:
            raise Forbidden("direct.students_not_allowed", "This school does not allow dialogs between students.")

        def command() -> Chat:
            again = self.find(DirectIndex, DirectIndex.create_id(actor_id, other_id))
            if again is not None:
                return self.chat(again.chat_id)
            pending: dict = {}
            chat = self._new_chat(pending, kind="direct", organization_id=None, name=None, created_by=actor_id,
                                  member_ids=[str(actor_id), str(other_id)])
            pending[DirectIndex.create_id(actor_id, other_id)] = DirectIndex(a=actor_id, b=other_id, chat_id=chat.id)
            self.save(*pending.values())
            return chat

        return self.retrying(command, ("direct", *sorted((str(actor_id), str(other_id)))))

    # -- the organization inbox (CH-5) ----------------------------------------------------------------
    def inbox_thread(self, member_id: uuid.UUID, organization_id: uuid.UUID,
                     school_says_member: AskOwner | None = None) -> Chat:
        """"Write to the administration": the member's thread with every admin. Right
        after joining, school's event may not be here yet: school itself is asked."""
        def command() -> Chat:
            pending: dict = {}
            roster = self._org_roster(organization_id, pending)
            if not confirmed(str(member_id) in roster.members, school_says_member):
                raise Forbidden("organization.members_only", "Only members of this organization can do this.")
            if str(member_id) in roster.inbox:
                return self.chat(uuid.UUID(roster.inbox[str(member_id)]))
            chat = self._new_chat(pending, kind="inbox", organization_id=organization_id, name=None,
                                  created_by=member_id, member_ids=[str(member_id), *roster.admins()])
            roster.open_inbox(member_id, chat.id)
            self.save(*pending.values())
            return chat

        return self.retrying(command, ("org", organization_id))

    def inbox(self, admin_id: uuid.UUID, organization_id: uuid.UUID) -> list[Chat]:
        roster = self._admin_roster(admin_id, organization_id)
        return [self.chat(uuid.UUID(c)) for c in roster.inbox.values()]

    def _moderates(self, chat: Chat, user_id: uuid.UUID) -> bool:
        """A manual chat's creator, or an admin of the chat's organization."""
        return (chat.kind == "manual" and chat.created_by == user_id) or self._is_admin(chat, user_id)

    def _is_admin(self, chat: Chat, user_id: uuid.UUID) -> bool:
        return chat.organization_id is not None and self._admin_of(user_id, chat.organization_id)

    # -- messages (CH-4) ---------------------------------------------------------------------------
    def post(self, actor_id: uuid.UUID, chat_id: uuid.UUID, text: str, reply_to: int | None = None,
             on_behalf_of_organization: bool = False, attachment_ids: list[uuid.UUID] | None = None,
             poll: dict | None = None) -> dict:
        """A message: text, attachments uploaded to this chat, a poll, or several of these (CH-4)."""
        attachment_ids = list(dict.fromkeys(attachment_ids or []))
        text = check_text(text, required=not (attachment_ids or poll))
        poll = check_poll(poll) if poll else None
        if len(attachment_ids) > MAX_ATTACHMENTS:
            raise Invalid("message.too_many_attachments", f"A message has at most {MAX_ATTACHMENTS} attachments.")

        def command() -> dict:
            chat = self.chat(chat_id)
            chat.check_member(actor_id)
            on_behalf = None
            if on_behalf_of_organization or chat.kind == "inbox" and actor_id != chat.created_by:
                # CH-5: admins answer the inbox and post in common chats as the organization.
                if not self._is_admin(chat, actor_id):
                    raise Forbidden("organization.role_required", "Only admins post on behalf of the organization.")
                on_behalf = chat.organization_id
            attachments = [self._unsent_attachment(actor_id, chat_id, a) for a in attachment_ids]
            page, changed = self._last_page(chat)
            if reply_to is not None and not 0 <= reply_to < page.next_seq:
                raise Invalid("message.reply_not_found", "The message replied to does not exist.")
            seq = page.post(uuid.uuid4(), actor_id, on_behalf, text, reply_to, utcnow(),
                            [a.view() for a in attachments], poll)
            for attachment in attachments:
                attachment.sent(seq)
            # One's own message is never unread: writing reads the chat up to it (as messengers do).
            mark = self._read_mark(chat_id, actor_id)
            mark.read(seq)
            self.save(*changed, page, *attachments, mark)
            return self._shown(chat, page.message(seq), actor_id)

        return self.retrying(command, ("chat", chat_id))

    def _last_page(self, chat: Chat) -> tuple[MessagePage, list[Any]]:
        """The page the next message goes on (a new one when the last is full) and what that changed."""
        page = self.find(MessagePage, MessagePage.create_id(chat.id, chat.pages - 1))
        if not page.full:
            return page, []
        chat.open_page()
        return MessagePage(chat_id=chat.id, number=chat.pages - 1), [chat]

    @once_per_event
    def on_recording_ready(self, event: CloudEvent) -> bool:
        """CA-6: a call's recording lands in the call's chat, posted by the call's admin, for its members."""
        data = event.data
        if data.get("chat_id") is None:
            return False
        chat_id = uuid.UUID(str(data["chat_id"]))
        author = uuid.UUID(str(data["admin_id"]))
        minutes, seconds = divmod(int(data["duration"]), 60)

        def command() -> bool:
            chat = self.find(Chat, chat_id)
            if chat is None:
                return self.process_once(event.id)
            attachment = Attachment(chat_id=chat_id, uploaded_by=author, kind="video", file_name=data["file_name"],
                                    media_type=data["media_type"], size=data["size"], blob_key=data["blob_key"])
            page, changed = self._last_page(chat)
            seq = page.post(uuid.uuid4(), author, None, f"Запись звонка ({minutes}:{seconds:02d})", None, utcnow(),
                            [attachment.view()], None)
            attachment.sent(seq)
            return self.process_once(event.id, *changed, page, attachment)

        return self.retrying(command, ("chat", chat_id))

    # -- attachments (CH-4) -----------------------------------------------------------------------------
    def upload_allowance(self, actor_id: uuid.UUID, chat_id: uuid.UUID, kind: str) -> dict[str, Any]:
        """Asked before a file's bytes are read (issue #12): members of the chat only, a
        known kind; how large it may be and what today's quotas leave (``bytes_left``,
        the ``scope`` that leaves the fewest: the person, or the chat's school)."""
        chat = self.chat(chat_id)
        chat.check_member(actor_id)
        if kind not in ATTACHMENT_KINDS:
            raise Invalid("attachment.invalid_kind", f"An attachment is one of: {', '.join(ATTACHMENT_KINDS)}.")
        left, scope = Quotas(self.find, actor_id, chat.organization_id, utcnow().date()).left()
        if left <= 0:
            raise quota_exceeded(scope, left)
        return {"max_bytes": attachment_max_bytes(kind), "bytes_left": left, "scope": scope}

    def upload_attachment(self, actor_id: uuid.UUID, chat_id: uuid.UUID, kind: str, file_name: str,
                          media_type: str, size: int, blob_key: str) -> Attachment:
        """A file the gateway received becomes an attachment of this chat, to be sent with
        a message: ``media_type`` is what its content was sniffed to be, the name is
        cleaned before it is checked, and its bytes count against today's quotas."""
        file_name = clean_file_name(file_name)
        media_type = media_type.split(";")[0].strip().lower()

        def upload() -> Attachment:
            chat = self.chat(chat_id)
            chat.check_member(actor_id)
            check_attachment(kind, file_name, media_type, size)
            ledgers = Quotas(self.find, actor_id, chat.organization_id, utcnow().date()).charge(size)
            attachment = Attachment(chat_id=chat_id, uploaded_by=actor_id, kind=kind, file_name=file_name,
                                    media_type=media_type, size=size, blob_key=blob_key)
            self.save(attachment, *ledgers)
            return attachment

        return self.retrying(upload)

    def _unsent_attachment(self, actor_id: uuid.UUID, chat_id: uuid.UUID, attachment_id: uuid.UUID) -> Attachment:
        attachment = self.find(Attachment, attachment_id)
        if attachment is None or attachment.chat_id != chat_id or attachment.uploaded_by != actor_id:
            raise Invalid("attachment.not_found", "Upload the file to this chat first.",
                          {"attachment_id": str(attachment_id)})
        if attachment.seq is not None:
            raise Conflict("attachment.already_sent", "This file was already sent.",
                           {"attachment_id": str(attachment_id)})
        return attachment

    def attachment(self, actor_id: uuid.UUID, chat_id: uuid.UUID, attachment_id: uuid.UUID) -> Attachment:
        """For download: members of the chat, once sent (the uploader before, too); not after the message's deletion."""
        self.chat(chat_id).check_member(actor_id)
        attachment = self.find(Attachment, attachment_id)
        if attachment is None or attachment.chat_id != chat_id or (
                attachment.seq is None and attachment.uploaded_by != actor_id):
            raise NotFound("attachment.not_found", "No such file in this chat.")
        if attachment.seq is not None and self._page_of(chat_id, attachment.seq).message(attachment.seq)["deleted"]:
            raise Gone("message.deleted", "The message with this file was deleted.")
        return attachment

    # -- polls (CH-4) -----------------------------------------------------------------------------------
    def vote(self, actor_id: uuid.UUID, chat_id: uuid.UUID, seq: int, options: list[int]) -> dict:
        def command() -> dict:
            chat = self.chat(chat_id)
            chat.check_member(actor_id)
            page = self._page_of(chat_id, seq)
            page.vote(seq, actor_id, options)
            self.save(page)
            return self._shown(chat, page.message(seq), actor_id)

        return self.retrying(command, ("chat", chat_id))

    def close_poll(self, actor_id: uuid.UUID, chat_id: uuid.UUID, seq: int) -> dict:
        """The poll's author (or a moderator) stops the voting; results stay."""
        def command() -> dict:
            chat = self.chat(chat_id)
            chat.check_member(actor_id)
            page = self._page_of(chat_id, seq)
            if page.message(seq)["author_id"] != str(actor_id) and not self._moderates(chat, actor_id):
                raise Forbidden("message.not_yours", "Only the poll's author closes it.")
            page.close_poll(seq, actor_id)
            self.save(page)
            return self._shown(chat, page.message(seq), actor_id)

        return self.retrying(command, ("chat", chat_id))

    def _page_of(self, chat_id: uuid.UUID, seq: int) -> MessagePage:
        page = self.find(MessagePage, MessagePage.create_id(chat_id, seq // PAGE_SIZE))
        if page is None:
            raise NotFound("message.not_found", "No such message.")
        return page

    def edit(self, actor_id: uuid.UUID, chat_id: uuid.UUID, seq: int, text: str) -> dict:
        text = check_text(text)

        def command() -> dict:
            self.chat(chat_id).check_member(actor_id)
            page = self._page_of(chat_id, seq)
            if page.message(seq)["author_id"] != str(actor_id):
                raise Forbidden("message.not_yours", "You can edit only your own messages.")
            page.edit(seq, text, utcnow())
            self.save(page)
            return self._shown(self.chat(chat_id), page.message(seq), actor_id)

        return self.retrying(command, ("chat", chat_id))

    def delete(self, actor_id: uuid.UUID, chat_id: uuid.UUID, seq: int) -> dict:
        """The author, the creator of a manual chat, or an admin of the chat's
        organization (moderation); a trace stays in the history."""
        def command() -> dict:
            chat = self.chat(chat_id)
            chat.check_member(actor_id)
            page = self._page_of(chat_id, seq)
            author = page.message(seq)["author_id"]
            if author != str(actor_id) and not self._moderates(chat, actor_id):
                raise Forbidden("message.not_yours", "You can delete only your own messages.")
            page.delete(seq, actor_id, utcnow())
            self.save(page)
            return self._shown(chat, page.message(seq), actor_id)

        return self.retrying(command, ("chat", chat_id))

    def history(self, actor_id: uuid.UUID, chat_id: uuid.UUID, before: int | None, after: int | None,
                limit: int) -> tuple[list[dict], int]:
        """A page of messages, newest first before ``before`` or oldest first after
        ``after`` (a reconnecting client catches up from its last seq); reads at most
        two pages of history however long the chat is."""
        chat = self.chat(chat_id)
        chat.check_member(actor_id)
        last = self.last_seq(chat)
        if after is not None:
            wanted = range(after + 1, min(last, after + limit) + 1)
        else:
            top = last if before is None else min(before - 1, last)
            wanted = range(top, max(-1, top - limit), -1)
        pages: dict[int, MessagePage] = {}
        found = []
        for seq in wanted:
            number = seq // PAGE_SIZE
            if number not in pages:
                pages[number] = self._page_of(chat_id, seq)
            found.append(self._shown(chat, pages[number].message(seq), actor_id))
        return found, last

    def _shown(self, chat: Chat, message: dict, viewer: uuid.UUID) -> dict:
        """What a member sees of a message. CH-5: who of the admins answered on behalf
        of the organization is known to admins only. Polls show counts and the
        viewer's own choice, never who chose what."""
        shown = dict(message)
        if message["on_behalf_of"] and not self._is_admin(chat, viewer):
            shown["author_id"] = None
        poll = message.get("poll")
        if poll:
            shown["poll"] = poll_results(poll, viewer)
        shown.setdefault("attachments", [])
        return shown

    def last_seq(self, chat: Chat) -> int:
        page = self.find(MessagePage, MessagePage.create_id(chat.id, chat.pages - 1))
        return page.next_seq - 1

    def mark_read(self, actor_id: uuid.UUID, chat_id: uuid.UUID, seq: int) -> int:
        chat = self.chat(chat_id)
        chat.check_member(actor_id)
        seq = min(seq, self.last_seq(chat))

        def read() -> int:
            mark = self._read_mark(chat_id, actor_id)
            if seq > mark.read_until:
                mark.read(seq)
                self.save(mark)
            return mark.read_until

        return self.retrying(read, ("read", chat_id, actor_id))

    def _read_mark(self, chat_id: uuid.UUID, user_id: uuid.UUID) -> ReadMark:
        return self.find(ReadMark, ReadMark.create_id(chat_id, user_id)) or ReadMark(chat_id=chat_id, user_id=user_id)

    # -- who a viewer sees in a chat (CH-5) ----------------------------------------------------------------
    @staticmethod
    def concealed(chat: Chat) -> set[str]:
        """Members the chat's other members must not see: in an inbox thread the admins
        answer as the organization, so the person who wrote sees none of them."""
        if chat.kind == "inbox":
            return set(chat.members) - {str(chat.created_by)}
        return set()

    def members_seen_by(self, chat: Chat, viewer: uuid.UUID) -> list[str]:
        hidden = self.concealed(chat)
        if str(viewer) in hidden:
            return list(chat.members)
        return [m for m in chat.members if m not in hidden]

    def chats_of(self, user_id: uuid.UUID) -> list[dict]:
        """One's chats with their last message and unread count."""
        mine = self.find(UserChats, UserChats.create_id(user_id))
        listed = []
        for chat_id in mine.chat_ids if mine else []:
            chat = self.chat(uuid.UUID(chat_id))
            last = self.last_seq(chat)
            mark = self.find(ReadMark, ReadMark.create_id(chat.id, user_id))
            read_until = mark.read_until if mark else -1
            listed.append({"chat": chat, "last_seq": last, "unread": max(0, last - read_until)})
        return sorted(listed, key=lambda c: -c["last_seq"])
