"""The call's shared whiteboard (CA-3, beta): the people in the call see it, draw on it and undo their own strokes;
a broadcast's viewers only look; the admin erases any stroke or clears the board.

Each change is saved on the board's aggregate and published (``calls.WhiteboardChanged``) through the outbox;
the gateway pushes it to the people in the call, and a late joiner reads the board whole, then applies the
changes after its ``revision``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from calls.application.base import CallsBase
from calls.domain import Call, Whiteboard
from shared.contracts.api.calls import DrawStroke
from shared.errors import Conflict, Forbidden, NotFound

Change = tuple[str, dict | None, str | None]  # action, the stroke drawn, the stroke id


class Whiteboards(CallsBase):
    # A board is read whole for each change: from its latest snapshot and the few changes after it.
    snapshotting_intervals = {Whiteboard: 50}

    def _on_board(self, call: Call, actor_id: uuid.UUID) -> None:
        """Only the people in the call now; to anyone never in it the call does not exist."""
        p = call.participants.get(str(actor_id))
        if p is None:
            raise NotFound("call.not_found", "No such call.")
        call.check_running()
        if not (p["connected"] or p["admitted"]):
            raise Forbidden("call.whiteboard_participants_only", "Only the people in the call see and draw on its "
                                                                 "whiteboard: join the call first.")

    def _board(self, call_id: uuid.UUID) -> Whiteboard:
        return self.find(Whiteboard, Whiteboard.create_id(call_id)) or Whiteboard(call_id=call_id)

    def whiteboard(self, actor_id: uuid.UUID, call_id: uuid.UUID) -> Whiteboard:
        """The board as it is now (a late joiner draws it, then applies the pushed changes after its revision)."""
        self._on_board(self.call(call_id), actor_id)
        return self._board(call_id)

    def _change_board(self, actor_id: uuid.UUID, call_id: uuid.UUID,
                      change: Callable[[Call, Whiteboard], Change]) -> dict:
        """Read the call and its board, apply ``change``, save; answers the change as it is pushed."""
        def command() -> dict:
            call = self.call(call_id)
            self._on_board(call, actor_id)
            board = self._board(call_id)
            action, stroke, stroke_id = change(call, board)
            if board.pending_events and board.version > 1:  # a board nobody drew on is not stored
                self.save(board)
            return {"call_id": call_id, "action": action, "revision": board.revision, "by": actor_id,
                    "stroke": stroke, "stroke_id": stroke_id}

        return self.retrying(command, ("whiteboard", call_id))

    def draw(self, actor_id: uuid.UUID, command: DrawStroke) -> dict:
        """A stroke on the board; its id is the client's, so the same stroke sent again changes nothing."""
        drawn = {"stroke_id": str(command.stroke_id), "user_id": str(actor_id), "color": command.color,
                 "width": command.width, "points": list(command.points)}

        def change(call: Call, board: Whiteboard) -> Change:
            if call.role_of(actor_id) == "viewer":
                raise Forbidden("call.whiteboard_view_only", "A broadcast's viewers see the whiteboard; its "
                                                             "presenters draw on it.")
            known = board.stroke(drawn["stroke_id"])
            if known is not None:
                if known["user_id"] != drawn["user_id"]:
                    raise Conflict("call.whiteboard_stroke_exists", "A stroke with this id is already on the board.")
                return "drawn", known, known["stroke_id"]
            board.check_room_for(len(drawn["points"]) // 2)
            board.draw(stroke=drawn)
            return "drawn", drawn, drawn["stroke_id"]

        return self._change_board(actor_id, command.call_id, change)

    def undo(self, actor_id: uuid.UUID, call_id: uuid.UUID) -> dict:
        """Take one's own latest stroke off the board."""
        def change(call: Call, board: Whiteboard) -> Change:
            mine = [s for s in board.strokes if s["user_id"] == str(actor_id)]
            if not mine:
                raise Conflict("call.whiteboard_nothing_to_undo", "You have no stroke on the board to undo.")
            board.erase(stroke_id=mine[-1]["stroke_id"], by=str(actor_id))
            return "erased", None, mine[-1]["stroke_id"]

        return self._change_board(actor_id, call_id, change)

    def erase(self, actor_id: uuid.UUID, call_id: uuid.UUID, stroke_id: str) -> dict:
        """The eraser: the admin takes any stroke off the board, anyone else only their own."""
        def change(call: Call, board: Whiteboard) -> Change:
            stroke = board.stroke(stroke_id)
            if stroke is None:
                raise NotFound("call.no_such_stroke", "This stroke is not on the board.", {"stroke_id": stroke_id})
            if stroke["user_id"] != str(actor_id):
                call.check_admin(actor_id)
            board.erase(stroke_id=stroke_id, by=str(actor_id))
            return "erased", None, stroke_id

        return self._change_board(actor_id, call_id, change)

    def clear(self, actor_id: uuid.UUID, call_id: uuid.UUID) -> dict:
        """The admin wipes the board."""
        def change(call: Call, board: Whiteboard) -> Change:
            call.check_admin(actor_id)
            if board.strokes:
                board.clear(by=str(actor_id))
            return "cleared", None, None

        return self._change_board(actor_id, call_id, change)

    def board_audience(self, call_id: uuid.UUID) -> list[str]:
        """Who is pushed the board's changes: the people in the call now."""
        call = self.find(Call, call_id)
        if call is None or call.ended:
            return []
        return [uid for uid, p in call.participants.items() if p["connected"] or p["admitted"]]
