"""calls's application: commands and queries, no transport.

Who belongs to a chat is messaging's knowledge and whether someone may
broadcast is school's: the service layer asks them and passes the answers in
(``chat_member_ids``, ``may_broadcast``), so every rule here is tested without
the other services.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from calls.domain import (
    KINDS,
    MAIN_ROOM,
    MAX_PRESENTERS,
    Call,
    LessonInfo,
    SubjectSlot,
    issue_join_token,
    plan_breakouts,
    room_id,
)
from shared.clock import utcnow
from shared.contracts import CloudEvent
from shared.errors import Conflict, Forbidden, Invalid, NotFound
from shared.store import ServiceApplication, once_per_event

log = logging.getLogger("calls")


class CallsApplication(ServiceApplication):
    name = "calls"

    def call(self, call_id: uuid.UUID) -> Call:
        return self.get_as(Call, call_id, "call.not_found", "No such call.")

    def _save_call(self, call_id: uuid.UUID, change: Any) -> Call:
        """Read the call, apply ``change`` and save, again if a concurrent save won."""

        def command() -> Call:
            call = self.call(call_id)
            change(call)
            self.save(call)
            return call

        return self.retrying(command, ("call", call_id))

    # -- starting (CA-2, CA-8, CA-9) -----------------------------------------------------------------
    def start_call(self, actor_id: uuid.UUID, kind: str, chat_id: uuid.UUID, chat_member_ids: list[str],
                   organization_id: uuid.UUID | None, title: str | None, invited: list[uuid.UUID] | None,
                   presenters: list[uuid.UUID] | None = None, may_broadcast: bool = False,
                   subject_slot: tuple[uuid.UUID, str] | None = None) -> Call:
        """A call from a chat: everyone in it or chosen members (CA-2); a broadcast from a
        school's chat to everyone in it, by a teacher or admin, with up to 5 presenters (CA-9).
        ``subject_slot``: the (class, subject) whose subject chat this is; a call there is a
        lesson of that subject and takes its slot (CA-8)."""
        if kind not in KINDS or kind == "lesson":
            raise Invalid("call.invalid_kind", "Start a call or a broadcast from a chat; lessons start from "
                                               "the timetable.")
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

        def command() -> Call:
            call = Call(kind=kind, started_by=actor_id, title=(title or "").strip()[:200] or
                        ("Broadcast" if kind == "broadcast" else "Call"), organization_id=organization_id,
                        chat_id=chat_id, invited=chosen, presenters=presenter_ids, class_id=class_id,
                        subject=subject, started_at=utcnow())
            call.admit(actor_id, time.time())
            slot = self._take_slot(class_id, subject, call) if class_id is not None and subject else None
            self.save(call, *([slot] if slot else []))
            return call

        if class_id is None or not subject:
            return command()
        return self.retrying(command, ("slot", class_id, subject.casefold()))

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
                     by_journal: bool = False) -> Call:
        """A published remote lesson's call, started by its teacher (CA-2, EJ-5); while a lesson of
        the same (class, subject) is under way no other starts (CA-8)."""
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
            call = Call(kind="lesson", started_by=starter, title=f"{facts['subject']}", organization_id=(
                uuid.UUID(facts["organization_id"]) if facts.get("organization_id") else None), chat_id=chat_id,
                invited=None, lesson_id=lesson_id, class_id=class_id, subject=facts["subject"], started_at=utcnow())
            call.admit(starter, time.time())
            slot = self._take_slot(class_id, facts["subject"], call)
            info.link_call(call.id)
            self.save(call, slot, info)
            return call

        return self.retrying(command, ("slot", class_id, facts["subject"].casefold()))

    # -- joining (CA-1, CA-10) ---------------------------------------------------------------------------
    def may_join(self, call: Call, actor_id: uuid.UUID, chat_member_ids: list[str]) -> bool:
        if actor_id == call.started_by or str(actor_id) in call.presenters:
            return True
        if call.invited is not None:
            return str(actor_id) in call.invited
        return str(actor_id) in set(map(str, chat_member_ids))

    def join(self, actor_id: uuid.UUID, call_id: uuid.UUID, chat_member_ids: list[str]) -> tuple[Call, str, int]:
        """Admit the person (the 101st is refused, CA-1) and give them a join token for the SFU."""
        def change(call: Call) -> None:
            call.check_running()
            if not self.may_join(call, actor_id, chat_member_ids):
                raise Forbidden("call.not_invited", "You are not invited to this call.")
            call.admit(actor_id, time.time())

        call = self._save_call(call_id, change)
        token, ttl = issue_join_token(call, actor_id)
        return call, token, ttl

    def leave(self, actor_id: uuid.UUID, call_id: uuid.UUID) -> Call:
        """One leaves a call one was in; to anybody else the call does not exist (its view
        names its participants): the authorization matrix found it answered everyone."""
        def change(call: Call) -> None:
            if str(actor_id) not in call.participants:
                raise NotFound("call.not_found", "No such call.")
            call.disconnect(str(actor_id), "left")

        return self._save_call(call_id, change)

    # -- controls (CA-3, CA-4, CA-7) ----------------------------------------------------------------------
    def raise_hand(self, actor_id: uuid.UUID, call_id: uuid.UUID, raised: bool) -> Call:
        def change(call: Call) -> None:
            call.check_running()
            p = call.check_in_call(actor_id)
            if p["hand"] != raised:
                call.set_hand(user_id=str(actor_id), raised=raised)

        return self._save_call(call_id, change)

    def lower_hand_of(self, actor_id: uuid.UUID, call_id: uuid.UUID, user_id: uuid.UUID) -> Call:
        def change(call: Call) -> None:
            call.check_running()
            call.check_admin(actor_id)
            if call.check_in_call(user_id)["hand"]:
                call.set_hand(user_id=str(user_id), raised=False)

        return self._save_call(call_id, change)

    def mute(self, actor_id: uuid.UUID, call_id: uuid.UUID, user_id: uuid.UUID) -> Call:
        def change(call: Call) -> None:
            call.check_running()
            call.check_admin(actor_id)
            if not call.check_in_call(user_id)["muted"]:
                call.mute(user_id=str(user_id), by=str(actor_id))

        return self._save_call(call_id, change)

    def unmute_self(self, actor_id: uuid.UUID, call_id: uuid.UUID) -> Call:
        def change(call: Call) -> None:
            call.check_running()
            if call.check_in_call(actor_id)["muted"]:
                call.unmute(user_id=str(actor_id))

        return self._save_call(call_id, change)

    def remove(self, actor_id: uuid.UUID, call_id: uuid.UUID, user_id: uuid.UUID) -> Call:
        def change(call: Call) -> None:
            call.check_running()
            call.check_admin(actor_id)
            if user_id == call.started_by:
                raise Invalid("call.cannot_remove_admin", "The admin cannot remove themselves; end the call instead.")
            call.check_in_call(user_id)
            call.disconnect(str(user_id), "removed")

        return self._save_call(call_id, change)

    def set_permissions(self, actor_id: uuid.UUID, call_id: uuid.UUID, screen_share: bool) -> Call:
        def change(call: Call) -> None:
            call.check_running()
            call.check_admin(actor_id)
            if call.screen_share_allowed != screen_share:
                call.set_permissions(screen_share=screen_share)

        return self._save_call(call_id, change)

    def end(self, actor_id: uuid.UUID | None, call_id: uuid.UUID, reason: str = "ended_by_admin") -> Call:
        """CA-7: the admin ends the call for everyone (``actor_id`` None: the journal ended the lesson)."""
        call = self.call(call_id)
        if actor_id is not None:
            call.check_admin(actor_id)
        if call.ended:
            return call

        def command() -> Call:
            c = self.call(call_id)
            if c.ended:
                return c
            c.end(by=str(actor_id) if actor_id else None, reason=reason, at=utcnow())
            objs: list[Any] = [c]
            if c.class_id is not None and c.subject:
                slot = self.find(SubjectSlot, SubjectSlot.create_id(c.class_id, c.subject))
                if slot is not None and slot.call_id == c.id:
                    slot.free(call_id=c.id)
                    objs.append(slot)
            self.save(*objs)
            return c

        return self.retrying(command, ("call", call_id))

    # -- breakout rooms (CA-5) -------------------------------------------------------------------------------
    def open_breakouts(self, actor_id: uuid.UUID, call_id: uuid.UUID, count: int,
                       manual: dict[str, int] | None) -> Call:
        def change(call: Call) -> None:
            call.check_running()
            call.check_admin(actor_id)
            if call.breakouts:
                raise Conflict("call.breakouts_open", "Breakout rooms are already open; close them first.")
            present = [u for u in call.present(time.time()) if u != str(call.started_by)]
            rooms, assignment = plan_breakouts(count, present, {str(k): v for k, v in (manual or {}).items()})
            call.open_breakouts(rooms=rooms, assignment=assignment)

        return self._save_call(call_id, change)

    def move(self, actor_id: uuid.UUID, call_id: uuid.UUID, user_id: uuid.UUID, room: str) -> Call:
        def change(call: Call) -> None:
            call.check_running()
            call.check_admin(actor_id)
            call.check_in_call(user_id)
            if room != MAIN_ROOM and room not in call.breakouts:
                raise NotFound("call.no_such_room", "No such breakout room.", {"room": room})
            call.move(user_id=str(user_id), room=room)

        return self._save_call(call_id, change)

    def close_breakouts(self, actor_id: uuid.UUID, call_id: uuid.UUID) -> Call:
        def change(call: Call) -> None:
            call.check_running()
            call.check_admin(actor_id)
            if call.breakouts:
                call.close_breakouts()

        return self._save_call(call_id, change)

    # -- recording (CA-6) ----------------------------------------------------------------------------------
    def start_recording(self, actor_id: uuid.UUID, call_id: uuid.UUID) -> Call:
        def change(call: Call) -> None:
            call.check_running()
            call.check_admin(actor_id)
            if call.chat_id is None:
                raise Conflict("call.no_chat", "This call has no chat to save a recording into.")
            if call.recording is None:
                call.start_recording(recording_id=uuid.uuid4().hex, by=str(actor_id), at=utcnow())

        return self._save_call(call_id, change)

    def stop_recording(self, actor_id: uuid.UUID, call_id: uuid.UUID) -> Call:
        def change(call: Call) -> None:
            call.check_admin(actor_id)
            if call.recording is not None:
                call.stop_recording(recording_id=call.recording["recording_id"])

        return self._save_call(call_id, change)

    # -- the SFU's facts (media up) ---------------------------------------------------------------------------
    @once_per_event
    def on_sfu_fact(self, event: CloudEvent) -> bool:
        data = event.data
        call_id = uuid.UUID(str(data["call_id"]))

        def command() -> bool:
            call = self.find(Call, call_id)
            if call is None:
                return self.process_once(event.id)
            kind = event.contract.name
            uid = str(data.get("user_id") or "")
            if kind == "ParticipantConnected" and not call.ended and uid in call.participants:
                p = call.participants[uid]
                if not p.get("removed") and not p["connected"]:
                    call.connected(user_id=uid, at=utcnow())
            elif kind == "ParticipantDisconnected":
                p = call.participants.get(uid)
                if p and p["connected"]:
                    call.disconnect(uid, data.get("reason") or "left")
            elif kind == "RecordingWritten":
                if not any(r["recording_id"] == data["recording_id"] for r in call.recordings):
                    call.recording_ready(recording_id=data["recording_id"], blob_key=data["blob_key"],
                                         size=data["size"], media_type=data["media_type"],
                                         duration=data["duration"], file_name=data["file_name"],
                                         chat_id=str(call.chat_id) if call.chat_id else None,
                                         admin_id=str(call.started_by))
            return self.process_once(event.id, call)

        return self.retrying(command, ("call", call_id))

    # -- the e-journal's lessons (CA-2, CA-7, EJ-5) ---------------------------------------------------------------
    @once_per_event
    def on_lesson(self, event: CloudEvent, record: bool = True) -> bool:
        """Keep the published remote lessons (``record``: with the event's id, once)."""
        data = event.data
        lesson_id = uuid.UUID(str(data["lesson_id"]))
        facts = {k: (str(v) if isinstance(v, uuid.UUID) else v) for k, v in data.items()
                 if k in ("organization_id", "class_id", "subject", "teacher_user_id", "provider_id",
                          "external_class_id", "external_teacher_id", "external_lesson_id", "remote")}
        name = event.contract.name

        def command() -> bool:
            info = self.find(LessonInfo, LessonInfo.create_id(lesson_id))
            if info is None:
                info = LessonInfo(lesson_id=lesson_id, facts=facts)
            elif info.facts != facts:
                info.update(facts=facts)
            if name == "LessonCancelled" and info.facts.get("remote"):
                info.update(facts={**facts, "remote": False})
            if record:
                return self.process_once(event.id, info)
            self.save(info)
            return True

        return self.retrying(command, ("lesson", lesson_id))

    def lesson_call(self, lesson_id: uuid.UUID) -> Call | None:
        info = self.find(LessonInfo, LessonInfo.create_id(lesson_id))
        return self.find(Call, info.call_id) if info and info.call_id else None

    def lesson_info(self, lesson_id: uuid.UUID) -> LessonInfo | None:
        return self.find(LessonInfo, LessonInfo.create_id(lesson_id))


def participant_views(call: Call) -> list[dict]:
    return [{"user_id": uid, "role": p["role"], "connected": p["connected"], "hand_raised": p["hand"],
             "muted": p["muted"], "room": p["room"], "sfu_room": room_id(call.id, p["room"])}
            for uid, p in call.participants.items() if p["connected"] or p["admitted"]]
