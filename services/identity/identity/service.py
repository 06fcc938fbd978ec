"""identity's nameko entrypoints: RPC only, each a thin call into the application."""

from __future__ import annotations

import uuid

from nameko.extensions import DependencyProvider

from identity.application import IdentityApplication
from identity.delivery import delivery_from_env
from identity.domain import CODE_TTL, RESEND_AFTER
from identity.schemas import AccountView, SignedIn, SignInCodeIssued
from shared.auth import issue_access_token
from shared.errors import Forbidden
from shared.service import EventSourcedApp, Observability, rpc


class DeliveryProvider(DependencyProvider):
    def setup(self) -> None:
        self.delivery = delivery_from_env()

    def get_dependency(self, worker_ctx):
        return self.delivery


class IdentityService:
    name = "identity"

    app: IdentityApplication = EventSourcedApp(IdentityApplication)
    delivery = DeliveryProvider()
    observability = Observability()

    @rpc
    def request_sign_in_code(self, phone: str) -> dict:
        issued = self.app.request_sign_in_code(phone)
        challenge = issued.challenge
        self.delivery.send_sms(challenge.phone, f"Sfera sign-in code: {issued.code}", code=issued.code)
        return SignInCodeIssued().dump({
            "challenge_id": challenge.id,
            "channel": challenge.channel,
            "phone": challenge.phone,
            "resend_after": int(RESEND_AFTER.total_seconds()),
            "expires_in": int(CODE_TTL.total_seconds()),
        })

    @rpc
    def confirm_sign_in(self, challenge_id: str, code: str) -> dict:
        signed_in = self.app.confirm_sign_in(uuid.UUID(challenge_id), code)
        token = issue_access_token(signed_in.account.id)
        return SignedIn().dump({
            "user_id": signed_in.account.id,
            "new_account": signed_in.new_account,
            "access_token": token.token,
            "token_type": "Bearer",
            "expires_in": token.expires_in,
        })

    @rpc
    def get_account(self, actor_id: str, account_id: str) -> dict:
        if actor_id != account_id:
            raise Forbidden("account.forbidden", "You can only see your own account.")
        account = self.app.get_account(uuid.UUID(account_id))
        return AccountView().dump({**vars(account), "user_id": account.id})
