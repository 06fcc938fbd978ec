"""Who may join and see a call, and who in it has lost that since (CA-2, CA-10).

The call keeps who it was for when it started (its starter, its chosen members, a broadcast's presenters), but
the call is its chat's: that snapshot only narrows the chat's members *now*, as messaging says them (the service
asks ``members_of`` and passes them in). An audit found the snapshot admitting on its own: a teacher the school had
removed re-entered, with the admin's token, the class call they had started; an invited pupil who had left the
school re-entered too. A lesson's call keeps the journal's rule: its teacher as the journal now names them, and
the pupils the journal keeps in the lesson's subject chat.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from calls.application.base import CallsBase
from calls.domain import Call, LessonInfo


class Access(CallsBase):
    def admits(self, call: Call, chat_member_ids: list[str]) -> Callable[[str], bool]:
        """Whether a user id may be in the call, given its chat's members now (one lookup for many people)."""
        members = set(map(str, chat_member_ids))
        if call.kind == "lesson":
            teacher = self._lesson_teacher(call)
            return lambda user: user in members or user == teacher
        chosen = None if call.invited is None else {*call.invited, str(call.started_by), *call.presenters}
        return lambda user: user in members and (chosen is None or user in chosen)

    def may_join(self, call: Call, actor_id: uuid.UUID, chat_member_ids: list[str]) -> bool:
        return self.admits(call, chat_member_ids)(str(actor_id))

    def lost_access(self, call: Call, chat_member_ids: list[str]) -> tuple[bool, list[str]]:
        """Whether the call's admin may no longer be in it, and who in it (connected, or admitted with a token)
        may no longer be."""
        if call.ended:
            return False, []
        admits = self.admits(call, chat_member_ids)
        if not admits(str(call.started_by)):
            return True, []
        return False, [user for user, p in call.participants.items()
                       if (p["connected"] or p["admitted"]) and not admits(user)]

    def _lesson_teacher(self, call: Call) -> str | None:
        """The lesson's teacher as the journal names them now (a lesson handed to another teacher is theirs)."""
        info = self.find(LessonInfo, LessonInfo.create_id(call.lesson_id)) if call.lesson_id else None
        return info.facts.get("teacher_user_id") if info is not None else None
