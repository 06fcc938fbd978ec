"""Join requests (SC-2, SC-3): a person asks to join an organization they found; its admins add them with a
role and class, or hide the request for good."""

from __future__ import annotations

import uuid

from school import lists
from school.application.base import SchoolBase
from school.domain import JoinRequest, JoinRequestQueue, Membership
from shared.contracts.api.school import ROLES, AcceptJoinRequest
from shared.errors import Conflict, Invalid
from shared.store import command


class JoinRequests(SchoolBase):
    def request_to_join(self, user_id: uuid.UUID, organization_id: uuid.UUID, message: str | None) -> JoinRequest:
        self.organization(organization_id)
        if self.membership(organization_id, user_id) is not None:
            raise Conflict("membership.already_member", "You are already a member.")

        def send() -> JoinRequest:
            request = self.find(JoinRequest, JoinRequest.create_id(organization_id, user_id))
            if request is None:
                request = JoinRequest(organization_id=organization_id, user_id=user_id, message=message)
            else:
                request.resend(message)
            queue = self.find(JoinRequestQueue, JoinRequestQueue.create_id(organization_id)) or JoinRequestQueue(
                organization_id=organization_id)
            queue.add(user_id)
            self.save(request, queue)
            return request

        return self.retrying(send)

    def join_requests(self, actor_id: uuid.UUID, organization_id: uuid.UUID) -> list[JoinRequest]:
        return self.join_requests_page(actor_id, organization_id, None, None)[0]

    def join_requests_page(self, actor_id: uuid.UUID, organization_id: uuid.UUID, cursor: str | None,
                           limit: int | None) -> tuple[list[JoinRequest], str | None]:
        """The requests waiting, in the order they came (a request sent again keeps its place), with the
        person's name, from the read model (``school.lists``); ``limit`` None: all of them."""
        self._require(organization_id, actor_id, "admin")
        return self._entries("join_request", organization_id, cursor, limit, lists.join_request,
                             columns=", p.last_name, p.first_name")

    @command
    def accept_join_request(self, actor_id: uuid.UUID, command: AcceptJoinRequest) -> Membership:
        """SC-3 "Add": the admin admits the person with a role and class."""
        organization_id, user_id = command.organization_id, command.user_id
        role, class_id = command.role, command.class_id
        self._require(organization_id, actor_id, "admin")
        if role not in ROLES:
            raise Invalid("member.invalid_roles", f"A role is one of {', '.join(ROLES)}.")
        if role in ("student", "parent"):
            if class_id is None:
                raise Invalid("member.class_required", "A student or parent belongs to a class.")
            self._open_class(self._school_class(organization_id, class_id))
        request = self.get_as(JoinRequest, JoinRequest.create_id(organization_id, user_id), "join_request.not_found",
                            "No such request.")
        request.accept(actor_id, role, class_id)
        queue = self.get_as(JoinRequestQueue, JoinRequestQueue.create_id(organization_id), "join_request.not_found",
                          "")
        queue.remove(user_id)
        changed = self._join(organization_id, user_id, role, class_id if role in ("student", "parent") else None,
                             "join_request")
        self.save(request, queue, *changed)
        return changed[0]

    @command
    def hide_join_request(self, actor_id: uuid.UUID, organization_id: uuid.UUID, user_id: uuid.UUID) -> None:
        """SC-3 "Hide": for good; the person can still be invited by a new link."""
        self._require(organization_id, actor_id, "admin")
        request = self.get_as(JoinRequest, JoinRequest.create_id(organization_id, user_id), "join_request.not_found",
                            "No such request.")
        request.hide(actor_id)
        queue = self.get_as(JoinRequestQueue, JoinRequestQueue.create_id(organization_id), "join_request.not_found",
                          "")
        queue.remove(user_id)
        self.save(request, queue)
