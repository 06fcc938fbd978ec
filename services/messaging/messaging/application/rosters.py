"""Rosters from school's events (CH-1, CH-2): every organization and class gets its chat,
and every chat that follows a roster is brought in line when a membership changes.
``messaging/handlers.py`` reads the events and calls these with plain values and the event's id."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from messaging.application.base import Base
from messaging.domain import ClassRoster, OrgRoster, membership_turn, parent_classes_of
from shared.consistency import owner
from shared.contracts import outdated
from shared.errors import NotYet
from shared.store import once_per_event


def name_organization(app: Base, roster: OrgRoster, name: str, at: Any, pending: dict) -> None:
    """The organization's name as of ``at`` on its roster and on the school's chat (CH-1: everyone in the
    school, named after it). That chat is a system chat nobody renames by hand (``check_manager``), so it
    always carries the school's newest name; class, subject and manual chats have names of their own. An
    older report than the one kept, or the same name, renames nothing."""
    if not roster.rename(name, at):
        return
    for chat_id in roster.chat_ids:
        chat = pending.get(uuid.UUID(chat_id)) or app.chat(uuid.UUID(chat_id))
        if chat.kind == "organization" and chat.name != name:
            chat.rename(name, chat.closed)
            pending[chat.id] = chat


class Rosters(Base):
    @once_per_event
    def _apply(self, key: Any, change: Callable[[dict], None], *, event_id: str) -> bool:
        """Apply a roster event once: ``change`` fills ``pending`` with what to save."""

        def command() -> bool:
            pending: dict = {}
            change(pending)
            return self.process_once(event_id, *pending.values())

        return self.retrying(command, key)

    def _resync_class(self, roster: ClassRoster, pending: dict) -> None:
        for chat_id in roster.chat_ids:
            chat = pending.get(uuid.UUID(chat_id)) or self.chat(uuid.UUID(chat_id))
            self._sync(chat, roster.members_for(chat), pending)

    def _resync_org(self, roster: OrgRoster, pending: dict) -> None:
        for chat_id in roster.chat_ids:
            chat = pending.get(uuid.UUID(chat_id)) or self.chat(uuid.UUID(chat_id))
            if chat.all_participants:
                self._sync(chat, list(roster.members), pending)

    def _resync_inbox(self, roster: OrgRoster, pending: dict) -> None:
        """CH-5: every inbox thread is its writer's with the school's admins as they are now (an admin
        appointed later answers the threads already open; one demoted or gone no longer sees them)."""
        admins = roster.admins()
        for chat_id in roster.inbox.values():
            chat = pending.get(uuid.UUID(chat_id)) or self.chat(uuid.UUID(chat_id))
            self._sync(chat, [str(chat.created_by), *admins], pending)

    def open_organization_chat(self, organization_id: uuid.UUID, name: str, at: datetime, *, event_id: str) -> bool:
        """Every organization gets its chat, with "all participants" on (CH-1); its name as of ``at`` is kept (the
        chat list's filter finds its inbox threads by it)."""

        def change(pending: dict) -> None:
            roster = self._org_roster(organization_id, pending)
            name_organization(self, roster, name, at, pending)
            if roster.chat_ids:
                return
            # a newer OrganizationUpdated may have come first (events arrive out of order): its name wins
            chat = self._new_chat(pending, kind="organization", organization_id=organization_id,
                                  name=getattr(roster, "name", None) or name, created_by=None,
                                  member_ids=list(roster.members),
                                  key=f"organization:{organization_id}", all_participants=True)
            roster.follow(chat.id)

        return self._apply(("org", organization_id), change, event_id=event_id)

    def update_organization(self, organization_id: uuid.UUID, name: str, settings: dict, at: datetime, *,
                            event_id: str, sequence: int | None = None) -> bool:
        """school's OrganizationUpdated: its settings (CH-1) and its name as of ``at``, which the school's chat
        follows. Each carries all the settings: those of an older version of the organization than the ones kept
        (``sequence``: a retried or replayed report of an earlier save) change nothing."""

        def change(pending: dict) -> None:
            roster = self._org_roster(organization_id, pending)
            if not roster.settings_outdated(sequence):
                roster.change_settings(settings, sequence)
            name_organization(self, roster, name, at, pending)

        return self._apply(("org", organization_id), change, event_id=event_id)

    def open_class_chat(self, organization_id: uuid.UUID, class_id: uuid.UUID, name: str, *, event_id: str) -> bool:
        """Every class gets its class chat: its students and teachers (CH-1)."""

        def change(pending: dict) -> None:
            roster = self._class_roster(class_id, organization_id, pending)
            chat = self._new_chat(pending, kind="class", organization_id=organization_id, name=name,
                                  created_by=None, member_ids=[], class_id=class_id, key=f"class:{class_id}")
            roster.follow(chat.id)
            self._resync_class(roster, pending)

        return self._apply(("class", class_id), change, event_id=event_id)

    def update_membership(self, organization_id: uuid.UUID, user_id: uuid.UUID, roles: list[str],
                          class_id: uuid.UUID | None, subjects: dict[str, list[str]], left: bool, *,
                          event_id: str, sequence: int | None = None,
                          parent_classes: list[uuid.UUID] | None = None) -> bool:
        """A person's roles, class and taught classes (``subjects`` by class id) in the organization as they are
        now (none once they ``left``); every chat that follows these rosters is brought in line. In the order of
        the membership's versions (``sequence``, ``membership_turn``): an older event changes nothing (a
        removed person's late MemberJoined put them back among the school's children), and one that comes
        before an earlier one applies the membership as school has it now (``_membership_now``).
        ``parent_classes``: the classes a parent is a parent in (PL-7: siblings in two classes; None: an event
        from before school said, where a parent's is their class)."""

        def apply(org: OrgRoster, pending: dict) -> None:
            self._bring_in_line(org, user_id, roles, class_id, subjects, left, pending, sequence, parent_classes)

        return self._in_membership_order(organization_id, user_id, sequence, apply, event_id)

    def _in_membership_order(self, organization_id: uuid.UUID, user_id: uuid.UUID, sequence: int | None,
                             apply: Callable[[OrgRoster, dict], None], event_id: str) -> bool:
        """``apply`` the event in its membership's version order (``messaging.domain.membership_turn``). School is asked
        for the membership as stored now before the organization's turn is taken (a call that waits never holds
        the school's roster events up); its turn decides again on what is stored by then."""
        stored = self.find(OrgRoster, OrgRoster.create_id(organization_id))
        now = None
        if membership_turn(stored.membership_version(user_id) if stored else 0, sequence) == "gap":
            ask = owner("school_membership_state")
            if ask is None:
                raise NotYet("an earlier event of this membership is still coming, and school cannot be asked")
            now = ask(organization_id, user_id)

        def change(pending: dict) -> None:
            org = self._org_roster(organization_id, pending)
            turn = membership_turn(org.membership_version(user_id), sequence)
            if turn == "older":
                return
            if turn == "gap":
                if now is None:  # another event applied meanwhile, before this one's: decided again next time
                    raise NotYet("an earlier event of this membership is still coming")
                self._membership_now(org, user_id, now, pending)
                return
            apply(org, pending)

        return self._apply(("org", organization_id), change, event_id=event_id)

    def _membership_now(self, org: OrgRoster, user_id: uuid.UUID, now: dict, pending: dict) -> None:
        """The person's membership as school has it now (``now``: an event of theirs came before an earlier one):
        it holds every event up to its version, the earlier ones still coming among them, which then change
        nothing. So it does what those would have done: leaving the school's manual chats and answered inbox
        threads if they left since (``left_version``; a rejoin since does not bring them back), and each taught
        class's subjects, since a TeacherAssigned still coming (a delta) will not set them. A state no newer than
        the one applied changes nothing."""
        kept = org.membership_version(user_id)
        if outdated(now["version"], kept):
            return
        if now.get("left_version", 0) > kept and now["active"]:  # left and back since: (not back: _bring_in_line)
            self._leave_school_chats(user_id, org.organization_id, pending)
        taught = now["subjects"] if now["active"] else {}
        self._bring_in_line(org, user_id, now["roles"] if now["active"] else [],
                            uuid.UUID(now["class_id"]) if now["class_id"] else None, taught,
                            not now["active"], pending, now["version"], now.get("parent_classes"))
        for cid, subjects in taught.items():
            roster = self._class_roster(uuid.UUID(cid), org.organization_id, pending)
            if roster.teachers.get(str(user_id)) != list(subjects):
                roster.set_teacher(user_id, list(subjects), teaches=True)
                self._resync_class(roster, pending)

    def _bring_in_line(self, org: OrgRoster, user_id: uuid.UUID, roles: list[str], class_id: uuid.UUID | None,
                       subjects: dict[str, list[str]], left: bool, pending: dict, version: int | None,
                       parent_classes: list | None = None) -> None:
        organization_id = org.organization_id
        key = str(user_id)
        previous_class = org.classes.get(key)
        previous_parenting = set(org.parent_classes(user_id))
        parenting = set(parent_classes_of(roles, class_id, parent_classes))
        previous_teaching = set(org.teaching.get(key, []))
        teaching = set(subjects if "teacher" in roles else {})
        was_admin = "admin" in org.members.get(key, [])
        org.set_member(user_id, roles, class_id, sorted(teaching), version, sorted(parenting))
        self._resync_org(org, pending)
        if was_admin != ("admin" in roles):
            self._resync_inbox(org, pending)
        studying = str(class_id) if class_id is not None and "student" in roles else None
        for cid in {c for c in (previous_class, str(class_id) if class_id else None) if c} | previous_parenting \
                | parenting:
            roster = self._class_roster(uuid.UUID(cid), organization_id, pending)
            roster.set_student(user_id, cid == studying)
            roster.set_parent(user_id, cid in parenting)
            self._resync_class(roster, pending)
        for cid in previous_teaching - teaching:
            roster = self._class_roster(uuid.UUID(cid), organization_id, pending)
            roster.set_teacher(user_id, [])
            self._resync_class(roster, pending)
        for cid in teaching - previous_teaching:  # SC-7: e.g. the class their invite named, no subjects yet
            roster = self._class_roster(uuid.UUID(cid), organization_id, pending)
            if key not in roster.teachers:  # subjects a TeacherAssigned already set stay
                roster.set_teacher(user_id, list(subjects[cid]), teaches=True)
                self._resync_class(roster, pending)
        if left:
            self._leave_school_chats(user_id, organization_id, pending)

    def _leave_school_chats(self, user_id: uuid.UUID, organization_id: uuid.UUID, pending: dict) -> None:
        """CH-6: whoever leaves a school leaves its manual chats and the inbox threads
        they answered as an admin; their own inbox thread and dialogs stay theirs. Their list of chats is written
        even when no chat is left (``left_school``): a command bringing them into one of the school's chats read
        that list before it checked the school's roster (``_check_school_members``), and its save conflicts."""
        chats = self._user_chats(user_id, pending)
        chats.left_school(organization_id)
        for chat_id in list(chats.chat_ids):
            chat = pending.get(uuid.UUID(chat_id)) or self.chat(uuid.UUID(chat_id))
            if str(chat.organization_id) != str(organization_id):
                continue
            if chat.kind == "manual" or (chat.kind == "inbox" and str(chat.created_by) != str(user_id)):
                self._sync(chat, [m for m in chat.members if m != str(user_id)], pending)

    def assign_teacher(self, organization_id: uuid.UUID, class_id: uuid.UUID, user_id: uuid.UUID,
                       subjects: list[str], *, event_id: str, sequence: int | None = None) -> bool:
        """school's TeacherAssigned: the teacher's subjects in one class (a delta of their membership), in the order
        of the membership's versions as ``update_membership``."""

        def apply(org: OrgRoster, pending: dict) -> None:
            key = str(user_id)
            teaching = sorted({*org.teaching.get(key, []), str(class_id)})
            org.set_member(user_id, org.members.get(key, ["teacher"]), org.classes.get(key), teaching, sequence)
            roster = self._class_roster(class_id, organization_id, pending)
            roster.set_teacher(user_id, subjects)
            self._resync_class(roster, pending)

        return self._in_membership_order(organization_id, user_id, sequence, apply, event_id)
