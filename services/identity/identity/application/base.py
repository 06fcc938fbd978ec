"""What identity's use cases share: the accounts' getters, new sessions, a person's family and memberships,
and the results the commands return."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from identity.domain import (
    MAX_PARENTS,
    Account,
    ChatCircle,
    EmailIndex,
    Family,
    Membership,
    ParentInvite,
    ParentLinks,
    PhoneIndex,
    Session,
    SessionIndex,
    SignInChallenge,
    hash_code,
)
from identity.privacy import Relation, relation
from shared.config import settings
from shared.ratelimit import RateLimiter
from shared.store import ServiceApplication

HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class IssuedCode:
    challenge: SignInChallenge
    code: str  # handed to the delivery adapter only, never returned to a client


@dataclass(frozen=True)
class SignIn:
    account: Account
    new_account: bool
    session: Session
    refresh_token: str


@dataclass(frozen=True)
class InviteInfo:
    """What school says of an invite token (the contract of ``school.validate_invite``)."""

    organization_id: uuid.UUID
    class_id: uuid.UUID | None
    role: str
    email_registration_allowed: bool


@dataclass(frozen=True)
class ParentInviteView:
    invite: ParentInvite
    token: str
    parents_linked: int = 0

    @property
    def used_up(self) -> bool:
        """PL-5: two parents are linked; the link takes nobody else."""
        return self.parents_linked >= MAX_PARENTS


class IdentityBase(ServiceApplication):
    name = "identity"

    # Aggregates that gather an event per sign-in or request are read from a
    # snapshot plus the few events after it, not replayed from the start.
    snapshotting_intervals = {SessionIndex: 50, Session: 50, Family: 50, Membership: 50, ChatCircle: 50}

    def __init__(self, env: Any = None, limiter: RateLimiter | None = None):
        super().__init__(env)
        self.limiter = limiter or RateLimiter.for_store(self.env, self.name)

    @property
    def secret(self) -> str:
        return settings().code_secret

    def get_account(self, account_id: uuid.UUID) -> Account:
        return self.get_as(Account, account_id, "account.not_found", "No such account.")

    def account_by_phone(self, phone: str) -> Account | None:
        index = self.find(PhoneIndex, PhoneIndex.create_id(phone))
        return self.get_account(index.account_id) if index else None

    def account_by_email(self, email: str) -> Account | None:
        index = self.find(EmailIndex, EmailIndex.create_id(email))
        return self.get_account(index.account_id) if index else None

    def _new_session(self, user_id: uuid.UUID, device: str, method: str, now: datetime) -> tuple[list[Any], str]:
        secret = secrets.token_urlsafe(32)
        salt = secrets.token_hex(8)
        session = Session(user_id=user_id, device=device[:200] or "unknown device", method=method, salt=salt,
                          token_hash=hash_code(self.secret, salt, secret), at=now)
        index = self.find(SessionIndex, SessionIndex.create_id(user_id)) or SessionIndex(user_id=user_id)
        index.add(session.id)
        return [session, index], f"{session.id}.{secret}"

    def family_of(self, user_id: uuid.UUID) -> tuple[set[str], set[str]]:
        """(children, parents) of a person."""
        family = self.find(Family, Family.create_id(user_id))
        links = self.find(ParentLinks, ParentLinks.create_id(user_id))
        return set(family.children if family else []), set(links.parents if links else {})

    def relation(self, viewer_id: uuid.UUID, person_id: uuid.UUID) -> Relation:
        children, parents = self.family_of(viewer_id)
        return relation(viewer_id, person_id, children, parents)

    def membership(self, user_id: uuid.UUID) -> Membership | None:
        return self.find(Membership, Membership.create_id(user_id))
