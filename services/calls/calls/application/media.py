"""The SFU's facts about a call's media: who connected, who dropped, which recording was written (CA-1, CA-6).
Each is applied once per event (``event_id``), with its effect. A node that died leaves its calls' participants
gone (``node_lost``, issue #17)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from calls.application.base import CallsBase
from calls.domain import Call
from shared.clock import utcnow
from shared.store import once_per_event


class Media(CallsBase):
    def _apply_fact(self, call_id: uuid.UUID, event_id: str, change: Callable[[Call], None]) -> bool:
        def command() -> bool:
            call = self.find(Call, call_id)
            if call is None:
                return self.process_once(event_id)
            change(call)
            return self.process_once(event_id, call)

        return self.retrying(command, ("call", call_id))

    @once_per_event
    def participant_connected(self, call_id: uuid.UUID, user_id: str, *, event_id: str,
                              node: str | None = None, sequence: int | None = None) -> bool:
        fact = [node, sequence] if sequence is not None else None

        def change(call: Call) -> None:
            if not from_its_node(call, node) or call.fact_outdated(user_id, node, sequence):
                return
            if not call.ended and user_id in call.participants:
                p = call.participants[user_id]
                if not p.get("removed") and not p["connected"]:
                    call.connected(user_id=user_id, at=utcnow(), fact=fact)
                elif fact is not None:  # connected already: its number still counts (a late disconnect is older)
                    call.fact_seen(user_id, fact)

        return self._apply_fact(call_id, event_id, change)

    @once_per_event
    def participant_disconnected(self, call_id: uuid.UUID, user_id: str, reason: str | None, *,
                                 event_id: str, node: str | None = None, sequence: int | None = None) -> bool:
        fact = [node, sequence] if sequence is not None else None

        def change(call: Call) -> None:
            if not from_its_node(call, node) or call.fact_outdated(user_id, node, sequence):
                return
            p = call.participants.get(user_id)
            if p and p["connected"]:
                call.disconnect(user_id, reason or "left", fact)
            elif p and fact is not None:  # before its connect (separate queues): kept, so that connect is set
                call.fact_seen(user_id, fact)  # aside; an admission since (a later session's) stays

        return self._apply_fact(call_id, event_id, change)

    @once_per_event
    def recording_written(self, call_id: uuid.UUID, recording_id: str, blob_key: str, size: int, media_type: str,
                          duration: float, file_name: str, *, event_id: str) -> bool:
        def change(call: Call) -> None:
            if not any(r["recording_id"] == recording_id for r in call.recordings):
                call.recording_ready(recording_id=recording_id, blob_key=blob_key, size=size, media_type=media_type,
                                     duration=duration, file_name=file_name,
                                     chat_id=str(call.chat_id) if call.chat_id else None,
                                     admin_id=str(call.started_by))

        return self._apply_fact(call_id, event_id, change)

    def node_lost(self, call_id: uuid.UUID, node: str) -> list[str]:
        """The SFU node carrying the call died (issue #17): its participants are gone, as if they left; a rejoin
        goes to a live node. Nothing when the call has moved on (another replica saw it first, or a rejoin)."""
        def command() -> list[str]:
            call = self.find(Call, call_id)
            if call is None or call.ended or call.node != node:
                return []
            gone = call.lose_node(node)
            self.save(call)
            return gone

        return self.retrying(command, ("call", call_id))


def from_its_node(call: Call, node: str | None) -> bool:
    """A media fact counts from the node carrying the call: a late one from a node the call left behind (dead,
    or the call moved on) must not seat someone again or drop them from the new node."""
    if node is None:
        return True
    if call.node is not None:
        return node == call.node
    return node not in call.lost_nodes
