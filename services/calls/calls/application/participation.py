"""Taking part in a call: joining with a token for the SFU (CA-1, CA-10), leaving, and the admin's controls --
hands, mute, removal, permissions, ending the call for everyone (CA-3, CA-4, CA-7)."""

from __future__ import annotations

import time
import uuid
from typing import Any

from calls.application.access import Access
from calls.domain import Call, SubjectSlot, issue_join_token
from calls.nodes import NodeRegistry, place
from shared.clock import utcnow
from shared.contracts.api.calls import SetPermissions
from shared.errors import Forbidden, Invalid, NotFound


class Participation(Access):
    def join(self, actor_id: uuid.UUID, call_id: uuid.UUID, chat_member_ids: list[str],
             nodes: NodeRegistry | None = None) -> tuple[Call, str, int]:
        """Admit the person (the 101st is refused, CA-1) and give them a join token for the SFU; with ``nodes``
        the call stays on its live SFU node or is assigned one (issue #17, ``calls.nodes.place``)."""
        def change(call: Call) -> None:
            call.check_running()
            if not self.may_join(call, actor_id, chat_member_ids):
                raise Forbidden("call.not_invited", "You are not invited to this call.")
            if nodes is not None:
                place(call, nodes)
            call.admit(actor_id, time.time())

        if nodes is not None:
            nodes.first_heard()  # a replica just started: the nodes' first heartbeats, not no node
        call = self._save_call(call_id, change)
        if nodes is not None and call.node is not None:
            nodes.assigned(call.node, str(call.id))
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

    def revoke_lost_access(self, call_id: uuid.UUID, chat_member_ids: list[str]) -> Call:
        """Whoever is in the call and may no longer join it (``lost_access``) leaves it (reason ``lost_access``:
        the SFU drops them at once; unlike the admin's removal it bars nothing, so one added back to the chat joins
        again); a call whose admin lost access ends for everyone (``admin_lost_access``): CA-2 gives a call one
        admin, its starter, and without them nobody could mute, remove or end it (CA-7), while an adult the
        school removed must not stay with its pupils. The service calls this with the chat's members now, at a
        join and every few seconds of a running call (``calls.service.Sweeps``): nothing is saved while nothing was
        lost."""
        call = self.call(call_id)
        admin_lost, gone = self.lost_access(call, chat_member_ids)
        if admin_lost:
            return self.end(None, call_id, "admin_lost_access")
        if not gone:
            return call

        def change(call: Call) -> None:
            for user in self.lost_access(call, chat_member_ids)[1]:
                call.disconnect(user, "lost_access")

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

    def set_permissions(self, actor_id: uuid.UUID, command: SetPermissions) -> Call:
        def change(call: Call) -> None:
            call.check_running()
            call.check_admin(actor_id)
            if call.screen_share_allowed != command.screen_share:
                call.set_permissions(screen_share=command.screen_share)

        return self._save_call(command.call_id, change)

    def end(self, actor_id: uuid.UUID | None, call_id: uuid.UUID, reason: str = "ended_by_admin") -> Call:
        """CA-7: the admin ends the call for everyone (``actor_id`` None: the journal ended the lesson, or
        the admin lost access to the call, ``revoke_lost_access``)."""
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
