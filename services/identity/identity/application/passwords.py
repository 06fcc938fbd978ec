"""Passwords (ID-2): setting one, "forgot password?" by code, and signing in with one behind
backoffs that a stranger cannot turn into a lock."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from identity.application.base import HOUR, IdentityBase, SignIn
from identity.domain import Account
from identity.passwords import hash_password, verify_password
from identity.phones import normalise_phone
from shared.clock import utcnow
from shared.config import env_int
from shared.errors import Forbidden, NotFound, Unauthorized
from shared.ratelimit import Backoff, refuse_backoff
from shared.store import command

# Password guessing (ID-2, OWASP ASVS 2.2.1): never a lock a stranger can set. Wrong
# passwords back off exponentially per (phone, address) and, softer, per phone
# (an address the owner signed in from before is not held back by the latter);
# one address has its own wide limit (a school may share one). A try is counted
# before the password is checked, so parallel tries cannot slip past, and a
# refused one is not checked at all (no oracle while backing off).
PASSWORD_TRIES_FROM_ADDRESS = Backoff(
    free=5, base=timedelta(seconds=30), cap=timedelta(minutes=15), forget_after=timedelta(hours=24),
    code="sign_in.too_many_attempts",
    message="Too many wrong passwords for this number; try again in {wait} s or sign in with a code.")


PASSWORD_TRIES_PER_PHONE = Backoff(
    free=20, base=timedelta(seconds=5), cap=timedelta(minutes=5), forget_after=HOUR,
    code="sign_in.too_many_attempts",
    message="Too many wrong passwords for this number; try again in {wait} s or sign in with a code.")


def password_tries_per_client() -> Backoff:
    return Backoff(free=env_int("SFERA_PASSWORD_FAILURES_PER_CLIENT", 100), base=timedelta(seconds=1),
                   cap=timedelta(minutes=15), forget_after=HOUR, code="sign_in.too_many_requests",
                   message="Too many wrong passwords from this address; try again in {wait} s.")


class Passwords(IdentityBase):
    @command
    def set_password(self, user_id: uuid.UUID, new_password: str, current_password: str | None) -> None:
        account = self.get_account(user_id)
        if account.password_hash is not None and not verify_password(account.password_hash, current_password or ""):
            raise Forbidden("password.current_wrong", "The current password is wrong.")
        account.set_password(hash_password(new_password))
        self.save(account)

    def reset_password(self, challenge_id: uuid.UUID, code: str, new_password: str, device: str,
                       now: datetime | None = None) -> SignIn:
        """"Forgot password?": a code to the account's phone replaces the password."""
        now = now or utcnow()
        password_hash = hash_password(new_password)  # refuse a weak one before the code is spent
        challenge = self._checked_challenge(challenge_id, code, now)
        account = self.account_by_phone(challenge.address) if challenge.phone else self.account_by_email(
            challenge.address)
        if account is None:
            raise NotFound("account.not_found", "No account has this phone number.")
        challenge.confirm(account.id, now)
        account.set_password(password_hash)
        started, refresh = self._new_session(account.id, device, "code", now)
        self.save(account, challenge, *started)
        return SignIn(account, False, started[0], refresh)

    def sign_in_with_password(self, raw_phone: str, password: str, client: str, device: str,
                              now: datetime | None = None) -> SignIn:
        """Limits and the argon2 check run once; only opening the session is the retried command
        (a retry must neither count the try again nor pay for argon2 again)."""
        now = now or utcnow()
        phone = normalise_phone(raw_phone)
        # Keys name the phone, not the account: an unknown phone is limited exactly like a known one.
        known_address = f"password-known:{phone}|{client}"
        gates = [(f"password-client:{client}", password_tries_per_client()),
                 (f"password:{phone}|{client}", PASSWORD_TRIES_FROM_ADDRESS)]
        if not self.limiter.marked(known_address):
            gates.append((f"password:{phone}", PASSWORD_TRIES_PER_PHONE))
        self._reserve_tries(gates, now)
        account = self.account_by_phone(phone)
        # verify_password does the same argon2 work when there is no account or no password.
        if not verify_password(account.password_hash if account else None, password) or account is None:
            # One answer for "no such account" and "wrong password" (no account discovery).
            raise Unauthorized("sign_in.bad_credentials", "The phone number or the password is wrong.")
        for key, _ in gates:
            self.limiter.forgive(key)
        self.limiter.clear(f"password:{phone}|{client}")
        self.limiter.mark(known_address, now)
        return self._open_password_session(account, device, now)

    @command
    def _open_password_session(self, account: Account, device: str, now: datetime) -> SignIn:
        started, refresh = self._new_session(account.id, device, "password", now)
        self.save(*started)
        return SignIn(account, False, started[0], refresh)

    def _reserve_tries(self, gates: list[tuple[str, Backoff]], now: datetime) -> None:
        """Counts this try under every gate, or refuses with the longest wait and counts nothing."""
        waits = [(self.limiter.wait(key, policy, now), policy) for key, policy in gates]
        wait, policy = max(waits, key=lambda w: w[0])
        if wait > 0:
            raise refuse_backoff(policy, wait)
        reserved: list[str] = []
        try:
            for key, policy in gates:
                self.limiter.reserve(key, policy, now)
                reserved.append(key)
        except Exception:
            for key in reserved:
                self.limiter.forgive(key)
            raise
