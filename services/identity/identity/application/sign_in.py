"""Sign-in codes by SMS, flash call or, for juniors with an invite, e-mail; the first code registers the
account (ID-1, ID-3, ID-4, ID-6)."""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any

from identity.application.base import HOUR, IdentityBase, InviteInfo, IssuedCode, SignIn
from identity.domain import CODE_TTL, Account, EmailIndex, PhoneIndex, SignInChallenge, hash_code
from identity.phones import normalise_email, normalise_phone
from shared.clock import utcnow
from shared.config import env_int
from shared.errors import Forbidden, Invalid
from shared.ratelimit import Limit

CODE_DIGITS = {"sms": 6, "email": 6, "flash_call": 4}


def code_limit() -> Limit:
    """Codes to one phone or address: a countdown between two (ID-1), five an hour."""
    return Limit(HOUR, 5, "sign_in.too_many_codes", "Too many codes for this number; try again in {wait} s.",
                 min_interval=timedelta(seconds=env_int("SFERA_CODE_RESEND_SECONDS", 60)),
                 countdown_code="sign_in.resend_too_early", countdown_message="A new code can be sent in {wait} s.")


def client_limit() -> Limit:
    # A whole school may sit behind one address: this limit is wide; the
    # per-phone one is the tight one.
    return Limit(HOUR, env_int("SFERA_CODES_PER_HOUR_PER_CLIENT", 200), "sign_in.too_many_requests",
                 "Too many sign-in requests from this address; try again in {wait} s.")


class SignInCodes(IdentityBase):
    def request_code(self, raw_address: str, channel: str, client: str, *, invite: InviteInfo | None = None,
                     invite_token: str | None = None, now: datetime | None = None) -> IssuedCode:
        """A code for a phone (SMS or flash call) or, for juniors with an invite
        that allows it, an e-mail. Says nothing of whether an account exists."""
        now = now or utcnow()
        if channel == "email":
            address = normalise_email(raw_address)
            if invite is None or not invite.email_registration_allowed or invite.role != "student":
                raise Forbidden("sign_in.email_not_allowed",
                                "Registration by e-mail needs an invite from a junior class that allows it.")
        elif channel in ("sms", "flash_call"):
            address = normalise_phone(raw_address)
        else:
            raise Invalid("sign_in.unknown_channel", "Codes are sent by sms, flash_call or email.")

        self.limiter.check(f"code-client:{client}", client_limit(), now)
        limit = code_limit()
        # The answer's countdown is the real wait before the next code: the hour's last one waits for the hour.
        wait = max(self.limiter.hit(f"code:{address}", limit, now),
                   self.limiter.hit(f"code-client:{client}", client_limit(), now))
        digits = CODE_DIGITS[channel]
        code = f"{secrets.randbelow(10**digits):0{digits}d}"
        salt = secrets.token_hex(16)
        challenge = SignInChallenge(
            address=address, channel=channel, salt=salt, code_hash=hash_code(self.secret, salt, code),
            expires_at=now + CODE_TTL, resend_at=now + timedelta(seconds=wait), invite_token=invite_token,
        )
        self.save(challenge)
        return IssuedCode(challenge, code)

    def _checked_challenge(self, challenge_id: uuid.UUID, code: str, now: datetime) -> SignInChallenge:
        challenge = self.get_as(SignInChallenge, challenge_id, "sign_in.not_found", "No such sign-in request.")
        if not challenge.check(self.secret, code.strip(), now):
            self.save(challenge)
            raise Invalid("sign_in.wrong_code", "The code is wrong.", {"attempts_left": challenge.attempts_left})
        return challenge

    def confirm_code(self, challenge_id: uuid.UUID, code: str, device: str, *, not_me: bool = False,
                     now: datetime | None = None) -> SignIn:
        """Sign in with a code, registering the account on first use (ID-1, ID-3).
        ``not_me`` (ID-6): the phone's current account belongs to someone else;
        detach the phone from it and register a new account."""
        now = now or utcnow()

        def confirm() -> SignIn:
            challenge = self._checked_challenge(challenge_id, code, now)
            if challenge.channel == "email":
                existing = self.account_by_email(challenge.address)
            else:  # the index decided on is the one re-pointed (ID-6): read once, so a concurrent re-pointing conflicts
                phone_index = self.find(PhoneIndex, PhoneIndex.create_id(challenge.address))
                existing = self.get_account(phone_index.account_id) if phone_index else None
            if existing is not None and not not_me:
                challenge.confirm(existing.id, now)
                started, refresh = self._new_session(existing.id, device, "code", now)
                self.save(challenge, *started)
                return SignIn(existing, False, started[0], refresh)
            if challenge.channel == "email":
                account = Account(phone=None, email=challenge.address, registered_via="email",
                                  invite_token=challenge.invite_token)
                index: Any = EmailIndex(challenge.address, account.id)
                changed: list[Any] = [index]
            else:
                account = Account(phone=challenge.address, email=None, registered_via="phone")
                if existing is not None:  # ID-6: "this is not me"
                    existing.detach_phone(challenge.address, now, account.id)
                    phone_index.reassign(account.id)
                    changed = [existing, phone_index]
                else:
                    changed = [PhoneIndex(challenge.address, account.id)]
            challenge.confirm(account.id, now)
            started, refresh = self._new_session(account.id, device, "code", now)
            self.save(account, *changed, challenge, *started)
            return SignIn(account, True, started[0], refresh)

        return self.retrying(confirm)
