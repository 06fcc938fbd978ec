"""What every use case of calls' application shares: the call getter and the retried read-change-save of one call.

Who belongs to a chat is messaging's knowledge and whether someone may broadcast is school's: the service layer
asks them and passes the answers in (``chat_member_ids``, ``may_broadcast``), so every rule here is tested without
the other services.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from calls.domain import Call, room_id
from shared.store import ServiceApplication


class CallsBase(ServiceApplication):
    name = "calls"

    def call(self, call_id: uuid.UUID) -> Call:
        return self.get_as(Call, call_id, "call.not_found", "No such call.")

    def _save_call(self, call_id: uuid.UUID, change: Callable[[Call], Any]) -> Call:
        """Read the call, apply ``change`` and save, again if a concurrent save won."""

        def command() -> Call:
            call = self.call(call_id)
            change(call)
            self.save(call)
            return call

        return self.retrying(command, ("call", call_id))


def participant_views(call: Call) -> list[dict]:
    return [{"user_id": uid, "role": p["role"], "connected": p["connected"], "hand_raised": p["hand"],
             "muted": p["muted"], "room": p["room"], "sfu_room": room_id(call.id, p["room"])}
            for uid, p in call.participants.items() if p["connected"] or p["admitted"]]
