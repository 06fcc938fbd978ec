"""Identity's application: commands and queries, no transport."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from identity.domain import CODE_TTL, MAX_ATTEMPTS, RESEND_AFTER, Account, PhoneIndex, SignInChallenge, hash_code
from identity.phones import normalise_phone
from shared.config import env_str
from shared.errors import Invalid, NotFound
from shared.store import ServiceApplication

CODE_DIGITS = 6


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class IssuedCode:
    challenge: SignInChallenge
    code: str  # handed to the delivery adapter only, never returned to a client


@dataclass(frozen=True)
class SignIn:
    account: Account
    new_account: bool


class IdentityApplication(ServiceApplication):
    name = "identity"

    @property
    def code_secret(self) -> str:
        return env_str("SFERA_CODE_SECRET", "dev-only-code-secret")

    def request_sign_in_code(self, raw_phone: str, now: datetime | None = None) -> IssuedCode:
        phone = normalise_phone(raw_phone)
        now = now or utcnow()
        code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
        salt = secrets.token_hex(16)
        challenge = SignInChallenge(
            phone=phone,
            channel="sms",
            salt=salt,
            code_hash=hash_code(self.code_secret, salt, code),
            expires_at=now + CODE_TTL,
            resend_at=now + RESEND_AFTER,
        )
        self.save(challenge)
        return IssuedCode(challenge, code)

    def confirm_sign_in(self, challenge_id: uuid.UUID, code: str, now: datetime | None = None) -> SignIn:
        challenge = self._get(SignInChallenge, challenge_id, "sign_in.not_found", "No such sign-in request.")
        ok = challenge.check(self.code_secret, code.strip(), now or utcnow())
        if not ok:
            self.save(challenge)
            raise Invalid("sign_in.wrong_code", "The code is wrong.",
                          {"attempts_left": max(0, MAX_ATTEMPTS - challenge.failed_attempts)})
        account = self.account_by_phone(challenge.phone)
        if account is not None:
            challenge.confirm(account.id)
            self.save(challenge)
            return SignIn(account, new_account=False)
        account = Account(phone=challenge.phone, email=None, registered_via="phone")
        challenge.confirm(account.id)
        try:
            self.save(account, PhoneIndex(challenge.phone, account.id), challenge)
        except IntegrityError:
            # Another confirmation registered this phone a moment ago (ID-3).
            account = self.account_by_phone(challenge.phone)
            assert account is not None
            challenge = self.repository.get(challenge_id)
            challenge.confirm(account.id)
            self.save(challenge)
            return SignIn(account, new_account=False)
        return SignIn(account, new_account=True)

    def account_by_phone(self, phone: str) -> Account | None:
        try:
            index: PhoneIndex = self.repository.get(PhoneIndex.create_id(phone))
        except AggregateNotFoundError:
            return None
        return self.repository.get(index.account_id)

    def get_account(self, account_id: uuid.UUID) -> Account:
        return self._get(Account, account_id, "account.not_found", "No such account.")

    def _get(self, cls: type, aggregate_id: uuid.UUID, code: str, message: str):
        try:
            aggregate = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            raise NotFound(code, message) from None
        if not isinstance(aggregate, cls):
            raise NotFound(code, message)
        return aggregate
