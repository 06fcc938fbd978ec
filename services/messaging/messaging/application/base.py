"""What every use case of messaging's application shares: finding chats and rosters,
keeping a chat's members and everyone's chat lists in line, rights checks, and how a
message is shown to its viewer (docs/rules.md CH-*).

Who may read and write a chat is decided here. Writes to one chat take turns inside the process (a keyed lock)
and race on aggregate versions across processes (optimistic concurrency, retried).
"""

from __future__ import annotations

import uuid
from typing import Any

from eventsourcing.utils import strtobool

from messaging.domain import PAGE_SIZE, Attachment, Chat, ClassRoster, MessagePage, OrgRoster, ReadMark, UserChats
from messaging.readmodel import MessagingProjection, shared_chat_ids
from shared.consistency import AskOwner, confirmed, owner
from shared.errors import Conflict, Forbidden, Invalid, NotFound
from shared.projection import ReadModel
from shared.store import ServiceApplication

CLASS_CHAT_KINDS = ("class", "subject", "class_students", "class_parents", "class_colleagues")
ASK_SCHOOL_AT_MOST = 20  # people added whom the roster lacks, asked of school one by one before a refusal


def school_puts_in(chat: Chat, membership: dict | None) -> bool:
    """Whether a person with school's ``membership`` of the chat's organization (roles, class_id, subjects by
    class id, as school's events carry them) belongs in this chat once the rosters have it: the school's chat
    (all participants), or a class chat as a student of the class or a teacher of it (the rosters' own rule)."""
    if not membership:
        return False
    if chat.kind == "organization":
        return chat.all_participants
    if chat.kind != "class" or chat.class_id is None:
        return False
    roles, class_id = membership.get("roles") or [], str(membership.get("class_id") or "")
    teaching = (membership.get("subjects") or {}) if "teacher" in roles else {}
    return ("student" in roles and class_id == str(chat.class_id)) or str(chat.class_id) in teaching


def poll_results(poll: dict, viewer: uuid.UUID | None = None) -> dict:
    counts = [0] * len(poll["options"])
    for chosen in poll["votes"].values():
        for option in chosen:
            counts[option] += 1
    return {"question": poll["question"], "options": list(poll["options"]), "multiple": poll["multiple"],
            "closed": poll["closed"], "counts": counts, "voters": len(poll["votes"]),
            "my_choice": list(poll["votes"].get(str(viewer), [])) if viewer else []}


class Base(ServiceApplication):
    name = "messaging"
    snapshotting_intervals = {Chat: 100, OrgRoster: 100, ClassRoster: 100, UserChats: 100}
    # a page every 50 events (0.94 vs 5.64 ms a page read at 200, bench.history_page): its state is its events'
    snapshots_as_saved = {MessagePage: 50, ReadMark: 100}

    def __init__(self, env: Any = None):
        super().__init__(env)
        # The chat list's, the inbox's and "who has read"'s tables (messaging.readmodel), kept from this store's
        # log; a query catches them up first.
        self.read_model = ReadModel(self, MessagingProjection())
        self.read_models = (*getattr(self, "read_models", ()), self.read_model)
        if strtobool(self.env.get("CREATE_TABLE", "n")):  # the migration step (and memory stores) make them,
            self.read_model.ensure()  # and apply the log (all of it after a version bump), so that the first
            self.read_model.catch_up()  # query of a release does not

    def close(self) -> None:
        self.read_model.close()
        super().close()

    # -- aggregates ---------------------------------------------------------------------------------
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

    def shared_chats(self, a: uuid.UUID, b: uuid.UUID) -> list[Chat]:
        """The chats two people are both in, dialogs and inbox threads aside (CH-1): found in the read model
        (the chats both lists hold, not a person's whole ``UserChats`` loaded), each confirmed on the chat
        itself. The read model lags the store; confirmed so, its lag can only refuse (a join it has not
        applied yet: refused until it has, a moment), never let a stranger in (a removal it has not applied)."""
        with self.read_model.reading() as db:
            candidates = shared_chat_ids(db, a, b)
        chats = (self.find(Chat, uuid.UUID(i)) for i in candidates)
        return [c for c in chats if c is not None and c.is_member(a) and c.is_member(b)
                and c.kind not in ("direct", "inbox")]

    def _page_of(self, chat_id: uuid.UUID, seq: int) -> MessagePage:
        page = self.find(MessagePage, MessagePage.create_id(chat_id, seq // PAGE_SIZE))
        if page is None:
            raise NotFound("message.not_found", "No such message.")
        return page

    def _last_page(self, chat: Chat) -> tuple[MessagePage, list[Any]]:
        """The page the next message goes on (a new one when the last is full) and what that changed."""
        page = self.find(MessagePage, MessagePage.create_id(chat.id, chat.pages - 1))
        if not page.full:
            return page, []
        chat.open_page()
        return MessagePage(chat_id=chat.id, number=chat.pages - 1), [chat]

    def _unsent_attachment(self, actor_id: uuid.UUID, chat_id: uuid.UUID, attachment_id: uuid.UUID) -> Attachment:
        """An attachment ``actor_id`` uploaded to this chat and has not sent yet (to go with a message)."""
        attachment = self.find(Attachment, attachment_id)
        if attachment is None or attachment.chat_id != chat_id or attachment.uploaded_by != actor_id:
            raise Invalid("attachment.not_found", "Upload the file to this chat first.",
                          {"attachment_id": str(attachment_id)})
        if attachment.seq is not None:
            raise Conflict("attachment.already_sent", "This file was already sent.",
                           {"attachment_id": str(attachment_id)})
        return attachment

    def last_seq(self, chat: Chat) -> int:
        page = self.find(MessagePage, MessagePage.create_id(chat.id, chat.pages - 1))
        return page.next_seq - 1

    def _read_mark(self, chat_id: uuid.UUID, user_id: uuid.UUID) -> ReadMark:
        return self.find(ReadMark, ReadMark.create_id(chat_id, user_id)) or ReadMark(chat_id=chat_id, user_id=user_id)

    # -- a chat's members, and everyone's list of chats ----------------------------------------------
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

    # -- rights ---------------------------------------------------------------------------------------
    def check_member(self, chat: Chat, user_id: uuid.UUID) -> None:
        """Only a chat's members read and write it. A chat that follows school's rosters may not have the
        person yet right after they joined the school or the class (school's event is on its way): before
        refusing, school is asked (shared/consistency.py), and lets in only where its membership puts them."""
        if not confirmed(chat.is_member(user_id), self._school_says_member(chat, user_id)):
            chat.check_member(user_id)

    @staticmethod
    def _school_says_member(chat: Chat, user_id: uuid.UUID) -> AskOwner | None:
        ask = owner("school_membership")
        if ask is None or chat.organization_id is None or chat.kind not in ("organization", "class"):
            return None
        return lambda: school_puts_in(chat, ask(user_id, chat.organization_id))

    def _check_school_members(self, organization_id: uuid.UUID | None, actor_id: uuid.UUID,
                              member_ids: list[uuid.UUID], pending: dict) -> None:
        """CH-6: only a member of the chat's school brings people in, and only the school's members: never someone
        of another school, nor an id nobody has. A chat of no school (made before chats belonged to one) takes
        nobody new. Someone the roster does not have yet (they just joined) is asked of school first.
        The command writes the chat lists of the actor and of those added, not the roster: they are read into
        ``pending`` before the roster, and leaving a school writes the leaver's (``_leave_school_chats``), so one
        leaving after this check makes the command's save conflict and its retry is refused."""
        if organization_id is None:
            raise Forbidden("chat.no_organization", "This chat belongs to no school: nobody new can join it.")
        for person in (actor_id, *member_ids):
            self._user_chats(person, pending)
        roster = self.find(OrgRoster, OrgRoster.create_id(organization_id))
        members = roster.members if roster is not None else {}
        if not confirmed(str(actor_id) in members, self._school_has(actor_id, organization_id)):
            raise Forbidden("organization.members_only", "Only members of this organization can do this.")
        outsiders = [str(m) for m in member_ids if str(m) not in members]
        if len(outsiders) <= ASK_SCHOOL_AT_MOST:
            outsiders = [m for m in outsiders if not confirmed(False, self._school_has(m, organization_id))]
        if outsiders:
            raise Invalid("chat.not_members", "Everyone added must belong to the organization.",
                          {"user_ids": outsiders})

    @staticmethod
    def _school_has(user_id: uuid.UUID | str, organization_id: uuid.UUID) -> AskOwner | None:
        ask = owner("school_membership")
        return None if ask is None else (lambda: bool(ask(uuid.UUID(str(user_id)), organization_id)))

    def _admin_of(self, user_id: uuid.UUID, organization_id: uuid.UUID) -> bool:
        roster = self.find(OrgRoster, OrgRoster.create_id(organization_id))
        return roster is not None and "admin" in roster.members.get(str(user_id), [])

    def _admin_roster(self, admin_id: uuid.UUID, organization_id: uuid.UUID) -> OrgRoster:
        roster = self.find(OrgRoster, OrgRoster.create_id(organization_id))
        if roster is None or "admin" not in roster.members.get(str(admin_id), []):
            raise Forbidden("organization.role_required", "Only the organization's admins do this.")
        return roster

    def _moderates(self, chat: Chat, user_id: uuid.UUID) -> bool:
        """A manual chat's creator, or an admin of the chat's organization."""
        return (chat.kind == "manual" and chat.created_by == user_id) or self._is_admin(chat, user_id)

    def _is_admin(self, chat: Chat, user_id: uuid.UUID) -> bool:
        return chat.organization_id is not None and self._admin_of(user_id, chat.organization_id)

    # -- what a viewer sees (CH-5) ----------------------------------------------------------------------
    def _shown(self, chat: Chat, message: dict, viewer: uuid.UUID) -> dict:
        """What a member sees of a message. CH-5: who of the admins answered on behalf of the organization is known
        to admins only. Polls show counts and the viewer's own choice, never who chose what. New dicts and lists all
        through, taken before any lookup: a query's message is the cached page's own, which another green thread may
        update in place while this one waits on the database (an edit, a deletion, a vote)."""
        shown = dict(message)
        if shown.get("poll"):
            shown["poll"] = poll_results(shown["poll"], viewer)
        shown["attachments"] = [dict(a) for a in shown.get("attachments") or ()]
        if shown["on_behalf_of"] and not self._is_admin(chat, viewer):
            shown["author_id"] = None
        return shown

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
