"""Identity's aggregates: sign-in challenges, accounts, and the phone index that
makes one phone belong to exactly one account (ID-3)."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import datetime, timedelta

from eventsourcing.domain import Aggregate, event

from shared.errors import Gone, Invalid, TooManyRequests

CODE_TTL = timedelta(minutes=5)
RESEND_AFTER = timedelta(seconds=60)
MAX_ATTEMPTS = 5
NAMESPACE = uuid.UUID("6f1c1f0e-6a53-4b9a-9a51-5f9a9f3d7c11")


def hash_code(secret: str, salt: str, code: str) -> str:
    """Codes are stored as keyed, salted hashes, never in clear (ID-9)."""
    return hmac.new(secret.encode(), f"{salt}:{code}".encode(), hashlib.sha256).hexdigest()


class SignInChallenge(Aggregate):
    """A one-time code sent to a phone (ID-1)."""

    @event("Issued")
    def __init__(self, phone: str, channel: str, salt: str, code_hash: str, expires_at: datetime,
                 resend_at: datetime):
        self.phone = phone
        self.channel = channel
        self.salt = salt
        self.code_hash = code_hash
        self.expires_at = expires_at
        self.resend_at = resend_at
        self.failed_attempts = 0
        self.account_id: uuid.UUID | None = None

    @property
    def confirmed(self) -> bool:
        return self.account_id is not None

    def check(self, secret: str, code: str, now: datetime) -> bool:
        """Refuses a dead challenge; records a wrong code; returns True for the right one."""
        if self.confirmed:
            raise Gone("sign_in.already_used", "This code was already used; request a new one.")
        if self.failed_attempts >= MAX_ATTEMPTS:
            raise TooManyRequests("sign_in.too_many_attempts", "Too many wrong codes; request a new one.")
        if now >= self.expires_at:
            raise Gone("sign_in.code_expired", "The code has expired; request a new one.")
        if hmac.compare_digest(self.code_hash, hash_code(secret, self.salt, code)):
            return True
        self.fail_attempt()
        return False

    @event("AttemptFailed")
    def fail_attempt(self) -> None:
        self.failed_attempts += 1

    @event("Confirmed")
    def confirm(self, account_id: uuid.UUID) -> None:
        self.account_id = account_id


class Account(Aggregate):
    """A person's one account (ID-3)."""

    @event("Registered")
    def __init__(self, phone: str | None, email: str | None, registered_via: str):
        self.phone = phone
        self.email = email
        self.registered_via = registered_via
        self.last_name: str | None = None
        self.first_name: str | None = None
        self.patronymic = None
        self.birth_date = None
        self.sex = None


class PhoneIndex(Aggregate):
    """Points a phone number at its account. Its id derives from the phone, so two
    concurrent registrations of one phone collide on version 1 and one fails."""

    @staticmethod
    def create_id(phone: str, **_: object) -> uuid.UUID:
        return uuid.uuid5(NAMESPACE, f"phone:{phone}")

    @event("Assigned")
    def __init__(self, phone: str, account_id: uuid.UUID):
        self.phone = phone
        self.account_id = account_id


def invalid_phone(raw: str) -> Invalid:
    return Invalid("phone.invalid", "This is not a valid phone number.", {"phone": raw})
