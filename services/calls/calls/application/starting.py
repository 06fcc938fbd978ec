"""Starting calls: from a chat or a broadcast (CA-2, CA-9), a published remote lesson (EJ-5), one lesson of a
(class, subject) at a time (CA-8)."""

from __future__ import annotations

import time
import uuid

from calls.application.base import CallsBase
from calls.domain import KINDS, MAX_PRESENTERS, Call, LessonInfo, SubjectSlot
from shared.clock import utcnow
from shared.contracts.api.calls import StartCall
from shared.errors import Conflict, Forbidden, Invalid, NotFound


class Starting(CallsBase):
    def start_call(self, actor_id: uuid.UUID, command: StartCall, chat_member_ids: list[str],
                   organization_id: uuid.UUID | None = None, chat_name: str | None = None,
                   may_broadcast: bool = False, subject_slot: tuple[uuid.UUID, str] | None = None,
                   chat_kind: str | None = None) -> Call:
        """A call from a chat: everyone in it or chosen members (CA-2); a broadcast from a
        school's chat to everyone in it, by a teacher or admin, with up to 5 presenters (CA-9).
        The chat's facts come from messaging and school: its members, its organization, its name (the
        title when the command gives none), whether the actor may broadcast to it, and ``subject_slot``:
        the (class, subject) whose subject chat this is; a call there is a lesson of that subject and
        takes its slot (CA-8). ``chat_kind``: messaging's kind of the chat; its inbox threads take no call (CH-5:
        the pupil who wrote must not learn which admin answers, and a call shows them: their face and voice, and
        the call's view names its starter and participants, which no concealing of ids would hide)."""
        kind, chat_id, title = command.kind, command.chat_id, command.title or chat_name
        invited, presenters = command.invited_user_ids, command.presenter_ids
        if kind not in KINDS or kind == "lesson":
            raise Invalid("call.invalid_kind", "Start a call or a broadcast from a chat; lessons start from "
                                               "the timetable.")
        if chat_kind == "inbox":
            raise Forbidden("call.not_in_inbox", "Calls do not start in a school's inbox: it answers in the "
                                                 "school's name.")
        members = set(map(str, chat_member_ids))
        if str(actor_id) not in members:
            raise Forbidden("chat.members_only", "Only the chat's members can start a call in it.")
        chosen = None
        if invited:
            chosen = sorted({str(u) for u in invited} | {str(actor_id)})
            outsiders = [u for u in chosen if u not in members]
            if outsiders:
                raise Invalid("call.not_in_chat", "Only the chat's members can be called.", {"user_ids": outsiders})
        presenter_ids: list[str] = []
        if kind == "broadcast":
            if not may_broadcast:
                raise Forbidden("call.broadcast_forbidden", "Only a school's teachers and admins broadcast to it.")
            presenter_ids = sorted({str(p) for p in presenters or []} - {str(actor_id)})
            if len(presenter_ids) + 1 > MAX_PRESENTERS:
                raise Invalid("call.too_many_presenters", f"A broadcast has at most {MAX_PRESENTERS} presenters.",
                              {"max": MAX_PRESENTERS})
            outsiders = [u for u in presenter_ids if u not in members]
            if outsiders:
                raise Invalid("call.not_in_chat", "Presenters must be members of the chat.", {"user_ids": outsiders})
            chosen = None
        class_id, subject = subject_slot or (None, None)

        def start() -> Call:
            call = Call(kind=kind, started_by=actor_id, title=(title or "").strip()[:200] or
                        ("Broadcast" if kind == "broadcast" else "Call"), organization_id=organization_id,
                        chat_id=chat_id, invited=chosen, presenters=presenter_ids, class_id=class_id,
                        subject=subject, started_at=utcnow())
            call.admit(actor_id, time.time())
            slot = self._take_slot(class_id, subject, call) if class_id is not None and subject else None
            self.save(call, *([slot] if slot else []))
            return call

        if class_id is None or not subject:
            return start()
        return self.retrying(start, ("slot", class_id, subject.casefold()))

    def _take_slot(self, class_id: uuid.UUID, subject: str, call: Call) -> SubjectSlot:
        """CA-8: the (class, subject) slot for ``call``, unless a lesson of it is still under way."""
        slot_id = SubjectSlot.create_id(class_id, subject)
        slot = self.find(SubjectSlot, slot_id) or SubjectSlot(class_id=class_id, subject=subject)
        if slot.call_id is not None:
            running = self.find(Call, slot.call_id)
            if running is not None and not running.ended:
                raise Conflict("call.subject_busy", "A lesson of this subject is still under way in this class; "
                               "it must end before the next starts.", {"call_id": str(running.id)})
        slot.take(call.id)
        return slot

    def start_lesson(self, actor_id: uuid.UUID | None, lesson_id: uuid.UUID, chat_id: uuid.UUID | None,
                     by_journal: bool = False, asked_as_of: int | None = None, event_id: str | None = None
                     ) -> Call | None:
        """A published remote lesson's call, started by its teacher (CA-2, EJ-5); while a lesson of
        the same (class, subject) is under way no other starts (CA-8). ``asked_as_of``: the version of the lesson
        the journal's start request was made at; a start the journal ended after that starts nothing (CA-7),
        checked on the lesson the command reads and writes (the journal's end writes it too, so an end applied
        at any moment before this save makes it conflict and run again). ``event_id``: the journal's request,
        recorded in the call's own transaction (a process killed after the call's save and before a separate record
        of the request started a second call on the redelivery); None when that request was applied before."""
        info = self.find(LessonInfo, LessonInfo.create_id(lesson_id))
        if info is None or not info.facts.get("remote"):
            raise NotFound("lesson.not_found", "This lesson is not a published remote lesson.")
        facts = info.facts
        teacher = facts.get("teacher_user_id")
        if teacher is None:
            raise Conflict("lesson.teacher_not_linked", "The lesson's teacher has not linked their journal account.")
        starter = uuid.UUID(teacher)
        if not by_journal and actor_id != starter:
            raise Forbidden("call.lesson_teacher_only", "Only the lesson's teacher starts its call.")
        if not facts.get("class_id"):
            raise Conflict("lesson.class_not_linked", "The lesson's class is not known on the platform yet.")
        class_id = uuid.UUID(facts["class_id"])

        def command() -> Call:
            info = self.find(LessonInfo, LessonInfo.create_id(lesson_id))
            if info.ended_after(asked_as_of):
                raise Conflict("lesson.ended_since", "The journal ended this lesson after its start was asked.")
            call = Call(kind="lesson", started_by=starter, title=f"{facts['subject']}", organization_id=(
                uuid.UUID(facts["organization_id"]) if facts.get("organization_id") else None), chat_id=chat_id,
                invited=None, lesson_id=lesson_id, class_id=class_id, subject=facts["subject"], started_at=utcnow())
            call.admit(starter, time.time())
            slot = self._take_slot(class_id, facts["subject"], call)
            info.link_call(call.id)
            if event_id is not None:
                return call if self.process_once(event_id, call, slot, info) else None
            self.save(call, slot, info)
            return call

        return self.retrying(command, ("slot", class_id, facts["subject"].casefold()))
