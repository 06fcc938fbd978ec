"""Breakout rooms (CA-5) and recording into the call's chat (CA-6), both the admin's."""

from __future__ import annotations

import time
import uuid

from calls.application.base import CallsBase
from calls.domain import MAIN_ROOM, Call, plan_breakouts
from shared.clock import utcnow
from shared.contracts.api.calls import MoveParticipant, OpenBreakouts
from shared.errors import Conflict, NotFound


class Rooms(CallsBase):
    def open_breakouts(self, actor_id: uuid.UUID, command: OpenBreakouts) -> Call:
        manual = {str(k): v for k, v in (command.assignment or {}).items()}

        def change(call: Call) -> None:
            call.check_running()
            call.check_admin(actor_id)
            if call.breakouts:
                raise Conflict("call.breakouts_open", "Breakout rooms are already open; close them first.")
            present = [u for u in call.present(time.time()) if u != str(call.started_by)]
            rooms, assignment = plan_breakouts(command.count, present, manual)
            call.open_breakouts(rooms=rooms, assignment=assignment)

        return self._save_call(command.call_id, change)

    def move(self, actor_id: uuid.UUID, command: MoveParticipant) -> Call:
        room = command.room

        def change(call: Call) -> None:
            call.check_running()
            call.check_admin(actor_id)
            call.check_in_call(command.user_id)
            if room != MAIN_ROOM and room not in call.breakouts:
                raise NotFound("call.no_such_room", "No such breakout room.", {"room": room})
            call.move(user_id=str(command.user_id), room=room)

        return self._save_call(command.call_id, change)

    def close_breakouts(self, actor_id: uuid.UUID, call_id: uuid.UUID) -> Call:
        def change(call: Call) -> None:
            call.check_running()
            call.check_admin(actor_id)
            if call.breakouts:
                call.close_breakouts()

        return self._save_call(call_id, change)

    def start_recording(self, actor_id: uuid.UUID, call_id: uuid.UUID) -> Call:
        """CA-6: the recording is posted into the call's chat for everyone in it (messaging's
        ``on_recording_ready``), so only a call of the whole chat is recorded: a call with chosen members (a teacher
        with one pupil of the class) would reach the whole class. CA-6 names the journal's lessons; calls of a whole
        chat record too, as the product does today (the call's recording button, the end-to-end tests)."""
        def change(call: Call) -> None:
            call.check_running()
            call.check_admin(actor_id)
            if call.chat_id is None:
                raise Conflict("call.no_chat", "This call has no chat to save a recording into.")
            if call.invited is not None:
                raise Conflict("call.recording_chosen_members", "A call with chosen members is not recorded: "
                                                                "its recording would be posted for the whole chat.")
            if call.recording is None:
                call.start_recording(recording_id=uuid.uuid4().hex, by=str(actor_id), at=utcnow())

        return self._save_call(call_id, change)

    def stop_recording(self, actor_id: uuid.UUID, call_id: uuid.UUID) -> Call:
        def change(call: Call) -> None:
            call.check_admin(actor_id)
            if call.recording is not None:
                call.stop_recording(recording_id=call.recording["recording_id"])

        return self._save_call(call_id, change)
