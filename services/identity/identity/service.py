"""identity's nameko entrypoints: thin calls into the application. Every RPC that
acts for a person takes ``actor_id`` (the gateway's verified token subject)."""

from __future__ import annotations

import uuid
from typing import Any

from nameko.extensions import DependencyProvider

from identity import handlers
from identity.application import IdentityApplication, InviteInfo, SignIn
from identity.delivery import DeliveryError, flash_call_number, mailer_from_env, sender_from_env
from identity.passwords import describe_cost
from shared.auth import issue_access_token
from shared.bus.consumer import consume_event
from shared.contracts import CloudEvent
from shared.contracts.api import identity as schemas
from shared.errors import DomainError, Forbidden
from shared.observability.logging import get_logger
from shared.rpc import TransientRpcProxy
from shared.service import EventSourcedApp, Observability, rpc, to_id

log = get_logger("identity.service")


class Delivery(DependencyProvider):
    """The SMS / flash call sender and the mailer chosen by the environment."""

    def setup(self) -> None:
        self.sender = sender_from_env()
        self.mailer = mailer_from_env()

    def get_dependency(self, worker_ctx):
        return self



def _signed_in(result: SignIn) -> dict:
    token = issue_access_token(result.account.id, str(result.session.id), method=result.session.method)
    return schemas.SignedIn().dump({
        "user_id": result.account.id,
        "new_account": result.new_account,
        "profile_complete": result.account.profile_complete,
        "access_token": token.token,
        "token_type": "Bearer",
        "expires_in": token.expires_in,
        "refresh_token": result.refresh_token,
        "session_id": result.session.id,
    })


class IdentityService:
    name = "identity"

    app: IdentityApplication = EventSourcedApp(IdentityApplication)
    delivery = Delivery()
    school = TransientRpcProxy("school")
    observability = Observability()

    # -- sign-in ------------------------------------------------------------------
    @rpc
    def request_sign_in_code(self, phone: str, client: str, channel: str = "sms") -> dict:
        issued = self.app.request_code(phone, channel, client)
        challenge = issued.challenge
        try:
            if channel == "flash_call":
                self.delivery.sender.flash_call(challenge.address, flash_call_number(issued.code), code=issued.code)
            else:
                self.delivery.sender.send_sms(challenge.address, f"Sfera: your code is {issued.code}. "
                                              "Do not tell it to anyone.", code=issued.code)
        except DeliveryError as exc:  # why, in the log only: the answer went to anyone asking for a code, with the
            # SMS gateway's address, paths and whatever it echoed (an outside audit)
            log.warning("sign-in code not delivered", extra={"channel": channel, "error": str(exc)[:500]})
            raise DomainError("sign_in.delivery_failed", "The code could not be sent; try again shortly.") from exc
        return self._issued(challenge)

    @rpc
    def request_email_code(self, email: str, invite_token: str, client: str) -> dict:
        """ID-4: juniors register by e-mail through an invite that allows it."""
        invite = self._invite(invite_token)
        issued = self.app.request_code(email, "email", client, invite=invite, invite_token=invite_token)
        try:
            self.delivery.mailer.send_email(issued.challenge.address, "Sfera: your sign-in code",
                                            f"Your code is {issued.code}. It is valid for 5 minutes.",
                                            code=issued.code)
        except DeliveryError as exc:
            raise DomainError("sign_in.delivery_failed", "The code could not be sent; try again shortly.") from exc
        return self._issued(issued.challenge)

    def _invite(self, token: str) -> InviteInfo:
        """The contract with school: ``school.validate_invite(token)`` answers with the
        invite's organization, class, role and whether it allows e-mail registration,
        or raises NotFound / Gone (``invite.*`` codes)."""
        info = self.school.validate_invite(token=token)
        return InviteInfo(organization_id=uuid.UUID(info["organization_id"]),
                          class_id=uuid.UUID(info["class_id"]) if info.get("class_id") else None,
                          role=info["role"], email_registration_allowed=bool(info["email_registration_allowed"]))

    @staticmethod
    def _issued(challenge) -> dict:
        return schemas.SignInCodeIssued().dump({
            "challenge_id": challenge.id, "channel": challenge.channel, "sent_to": challenge.address,
            "resend_after": round((challenge.resend_at - challenge.created_on).total_seconds()),
            "expires_in": round((challenge.expires_at - challenge.created_on).total_seconds()),
        })

    @rpc
    def confirm_sign_in(self, challenge_id: str, code: str, device: str = "", not_me: bool = False) -> dict:
        return _signed_in(self.app.confirm_code(to_id(challenge_id, "sign_in.not_found"), code, device,
                                                not_me=not_me))

    @rpc
    def sign_in_with_password(self, phone: str, password: str, client: str, device: str = "") -> dict:
        return _signed_in(self.app.sign_in_with_password(phone, password, client, device))

    @rpc
    def reset_password(self, challenge_id: str, code: str, new_password: str, device: str = "") -> dict:
        return _signed_in(self.app.reset_password(to_id(challenge_id, "sign_in.not_found"), code, new_password,
                                                  device))

    @rpc
    def set_password(self, actor_id: str, new_password: str, current_password: str | None = None) -> None:
        self.app.set_password(to_id(actor_id), new_password, current_password)

    @rpc
    def password_cost(self) -> str:
        return describe_cost()

    # -- sessions (ID-8) -------------------------------------------------------------
    @rpc
    def refresh(self, refresh_token: str) -> dict:
        session, token = self.app.refresh_session(refresh_token)
        access = issue_access_token(session.user_id, str(session.id), method=session.method)
        return schemas.Refreshed().dump({"access_token": access.token, "token_type": "Bearer",
                                         "expires_in": access.expires_in, "refresh_token": token,
                                         "session_id": session.id})

    @rpc
    def list_sessions(self, actor_id: str, current_session_id: str | None = None) -> list[dict]:
        return [schemas.SessionView().dump({**vars(s), "session_id": s.id, "current": str(s.id) == current_session_id})
                for s in self.app.sessions_of(to_id(actor_id))]

    @rpc
    def sign_out(self, actor_id: str, session_id: str) -> None:
        self.app.sign_out(to_id(actor_id), to_id(session_id, "session.not_found"))

    @rpc
    def sign_out_everywhere(self, actor_id: str, keep_session_id: str | None = None) -> dict:
        keep = to_id(keep_session_id) if keep_session_id else None
        return {"signed_out": self.app.sign_out_everywhere(to_id(actor_id), keep)}

    @rpc
    def session_is_active(self, session_id: str) -> bool:
        return self.app.session_is_active(to_id(session_id))

    # -- profile and privacy -----------------------------------------------------------
    @rpc
    def get_person(self, actor_id: str, user_id: str) -> dict:
        return schemas.PersonView().dump(self.app.view_person(to_id(actor_id), to_id(user_id, "account.not_found")))

    @rpc
    def update_profile(self, actor_id: str, user_id: str, profile: dict[str, Any]) -> dict:
        self.app.update_profile(to_id(actor_id), schemas.ProfileInput().load_command(
            profile, user_id=to_id(user_id, "account.not_found")))
        return self.get_person(actor_id, user_id)

    # -- parents (PL-*) --------------------------------------------------------------------
    @rpc
    def parent_invite(self, actor_id: str, to_share: bool = False) -> dict:
        """The student's link, or (PL-5) that it is used up: then no token to show or share."""
        def school_says_student() -> bool:
            return any("student" in m["membership"].get("roles", [])
                       for m in self.school.my_organizations(actor_id=actor_id))

        shown = self.app.parent_invite(to_id(actor_id), school_says_student=school_says_student)
        if shown.used_up:
            if to_share:
                raise Forbidden("parent_link.limit_reached", "Two parents are linked already; the link is used up.")
            return schemas.ParentInviteView().dump({"status": "used_up", "parents_linked": shown.parents_linked})
        return schemas.ParentInviteView().dump({"status": "active", "token": shown.token,
                                                "expires_at": shown.invite.expires_at,
                                                "parents_linked": shown.parents_linked})

    @rpc
    def preview_parent_invite(self, token: str) -> dict:
        return schemas.ParentInvitePreview().dump(self.app.preview_parent_invite(token))

    @rpc
    def open_parent_invite(self, actor_id: str, token: str) -> dict:
        return schemas.ParentInviteOpened().dump(self.app.open_parent_invite(token, to_id(actor_id)))

    @rpc
    def confirm_parent_link(self, actor_id: str, token: str, consent: bool, child: dict | None = None) -> dict:
        child_profile = schemas.ChildProfileInput().load_command(child) if child else None
        link_id = self.app.confirm_parent_link(token, to_id(actor_id), consent, child_profile)
        return {"link_id": str(link_id)}

    @rpc
    def unlink_parent(self, actor_id: str, child_id: str, parent_id: str) -> None:
        self.app.unlink_parent(to_id(actor_id), to_id(child_id, "parent_link.not_found"),
                               to_id(parent_id, "parent_link.not_found"))

    @rpc
    def revoke_parent_invite(self, actor_id: str, child_id: str) -> None:
        """The child's link stops working; the next one shown is new (PL-2)."""
        self.app.revoke_parent_invite(to_id(actor_id), to_id(child_id))

    @rpc
    def children(self, actor_id: str) -> list[dict]:
        return schemas.PersonView(many=True).dump(self.app.children(to_id(actor_id)))

    @rpc
    def parents(self, actor_id: str) -> list[dict]:
        return schemas.PersonView(many=True).dump(self.app.parents(to_id(actor_id)))

    # -- what identity learns from school ---------------------------------------------------
    @consume_event("school.MemberJoined.v1")
    def on_member_joined(self, event: CloudEvent) -> bool:
        return handlers.on_member_joined(self.app, event)

    @consume_event("school.MemberRoleChanged.v1")
    def on_member_role_changed(self, event: CloudEvent) -> bool:
        return handlers.on_member_role_changed(self.app, event)

    @consume_event("school.MemberLeft.v1")
    def on_member_left(self, event: CloudEvent) -> bool:
        return handlers.on_member_left(self.app, event)

    # -- what identity learns from messaging (ID-7: who shares a chat) ------------------------
    @consume_event("messaging.ChatCreated.v1")
    def on_chat_created(self, event: CloudEvent) -> bool:
        return handlers.on_chat_created(self.app, event)

    @consume_event("messaging.ChatMembersChanged.v1")
    def on_chat_members_changed(self, event: CloudEvent) -> bool:
        return handlers.on_chat_members_changed(self.app, event)

    # -- what identity learns from the e-journal bridge (EJ-2) -------------------------------
    @consume_event("ejournal_bridge.EjournalAccountLinked.v1")
    def on_ejournal_account_linked(self, event: CloudEvent) -> bool:
        return handlers.on_journal_account_linked(self.app, event)

    @consume_event("ejournal_bridge.EjournalAccountUnlinked.v1")
    def on_ejournal_account_unlinked(self, event: CloudEvent) -> bool:
        return handlers.on_journal_account_unlinked(self.app, event)

