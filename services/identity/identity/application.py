"""Identity's application: commands and queries, no transport (docs/rules.md ID-*, PL-*)."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from identity.domain import (
    CODE_TTL,
    MAX_PARENTS,
    PARENT_INVITE_TTL,
    Account,
    ChatCircle,
    EmailIndex,
    Family,
    Membership,
    ParentInvite,
    ParentInviteIndex,
    ParentLinks,
    PhoneIndex,
    Session,
    SessionIndex,
    SignInChallenge,
    hash_code,
    self_link_error,
    validate_profile,
)
from identity.passwords import hash_password, verify_password
from identity.phones import normalise_email, normalise_phone
from identity.privacy import Relation, relation, view
from shared.clock import utcnow
from shared.config import env_int, settings
from shared.consistency import AskOwner, confirmed
from shared.contracts import CloudEvent
from shared.errors import Forbidden, Gone, Invalid, NotFound, Unauthorized
from shared.links import link_id_from_token, link_token
from shared.ratelimit import Backoff, Limit, RateLimiter, refuse_backoff
from shared.store import ServiceApplication, command, once_per_event

T = TypeVar("T")

CODE_DIGITS = {"sms": 6, "email": 6, "flash_call": 4}
SESSION_IDLE_LIMIT = timedelta(days=30)
NOT_ME_WINDOW = timedelta(minutes=10)
HOUR = timedelta(hours=1)


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


class IdentityApplication(ServiceApplication):
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

    # -- helpers -------------------------------------------------------------
    def get_account(self, account_id: uuid.UUID) -> Account:
        return self.get_as(Account, account_id, "account.not_found", "No such account.")

    def account_by_phone(self, phone: str) -> Account | None:
        index = self.find(PhoneIndex, PhoneIndex.create_id(phone))
        return self.get_account(index.account_id) if index else None

    def account_by_email(self, email: str) -> Account | None:
        index = self.find(EmailIndex, EmailIndex.create_id(email))
        return self.get_account(index.account_id) if index else None

    # -- sign-in codes (ID-1, ID-4) -------------------------------------------
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
            else:
                existing = self.account_by_phone(challenge.address)
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
                    index = self.get_as(PhoneIndex, PhoneIndex.create_id(challenge.address), "phone.not_found", "")
                    index.reassign(account.id)
                    changed = [existing, index]
                else:
                    changed = [PhoneIndex(challenge.address, account.id)]
            challenge.confirm(account.id, now)
            started, refresh = self._new_session(account.id, device, "code", now)
            self.save(account, *changed, challenge, *started)
            return SignIn(account, True, started[0], refresh)

        return self.retrying(confirm)

    # -- passwords (ID-2) ------------------------------------------------------
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

    # -- sessions (ID-8) ---------------------------------------------------------
    def _new_session(self, user_id: uuid.UUID, device: str, method: str, now: datetime) -> tuple[list[Any], str]:
        secret = secrets.token_urlsafe(32)
        salt = secrets.token_hex(8)
        session = Session(user_id=user_id, device=device[:200] or "unknown device", method=method, salt=salt,
                          token_hash=hash_code(self.secret, salt, secret), at=now)
        index = self.find(SessionIndex, SessionIndex.create_id(user_id)) or SessionIndex(user_id=user_id)
        index.add(session.id)
        return [session, index], f"{session.id}.{secret}"

    def refresh_session(self, refresh_token: str, now: datetime | None = None) -> tuple[Session, str]:
        """Rotate the refresh token. A rotated token presented again means it leaked:
        the whole session is revoked and its holder must sign in again."""
        now = now or utcnow()
        session_id, _, secret = refresh_token.partition(".")
        try:
            session = self.get_as(Session, uuid.UUID(session_id), "auth.invalid_refresh", "")
        except (ValueError, NotFound):
            raise Unauthorized("auth.invalid_refresh", "This refresh token is not valid.") from None
        if not session.active:
            raise Unauthorized("auth.session_revoked", "This session was signed out; sign in again.")
        presented = hash_code(self.secret, session.salt, secret)
        if session.matches_current(presented):
            if now - session.last_used_at > SESSION_IDLE_LIMIT:
                session.revoke(now, "idle")
                self.save(session)
                raise Unauthorized("auth.session_expired", "This session was idle too long; sign in again.")
            new_secret = secrets.token_urlsafe(32)
            session.rotate(hash_code(self.secret, session.salt, new_secret), now)
            self.save(session)
            return session, f"{session.id}.{new_secret}"
        if session.was_rotated(presented):
            session.revoke(now, "refresh_token_reused")
            self.save(session)
            raise Unauthorized("auth.refresh_reused",
                               "This refresh token was already used; the session is signed out for safety.")
        raise Unauthorized("auth.invalid_refresh", "This refresh token is not valid.")

    def sessions_of(self, user_id: uuid.UUID) -> list[Session]:
        index = self.find(SessionIndex, SessionIndex.create_id(user_id))
        sessions = [self.repository.get(sid) for sid in (index.session_ids if index else [])]
        return sorted((s for s in sessions if s.active), key=lambda s: s.last_used_at, reverse=True)

    def session_is_active(self, session_id: uuid.UUID) -> bool:
        session = self.find(Session, session_id)
        return bool(session and session.active)

    @command
    def sign_out(self, user_id: uuid.UUID, session_id: uuid.UUID, now: datetime | None = None) -> None:
        session = self.find(Session, session_id)
        if session is None or session.user_id != user_id:
            raise NotFound("session.not_found", "No such session.")
        if session.active:
            session.revoke(now or utcnow(), "signed_out")
            self.save(session)

    @command
    def sign_out_everywhere(self, user_id: uuid.UUID, keep: uuid.UUID | None = None,
                            now: datetime | None = None) -> int:
        now = now or utcnow()
        ended = [s for s in self.sessions_of(user_id) if s.id != keep]
        for session in ended:
            session.revoke(now, "signed_out_everywhere")
        self.save(*ended)
        return len(ended)

    # -- profile (ID-5) ------------------------------------------------------------
    def family_of(self, user_id: uuid.UUID) -> tuple[set[str], set[str]]:
        """(children, parents) of a person."""
        family = self.find(Family, Family.create_id(user_id))
        links = self.find(ParentLinks, ParentLinks.create_id(user_id))
        return set(family.children if family else []), set(links.parents if links else {})

    def relation(self, viewer_id: uuid.UUID, person_id: uuid.UUID) -> Relation:
        children, parents = self.family_of(viewer_id)
        return relation(viewer_id, person_id, children, parents)

    @command
    def update_profile(self, actor_id: uuid.UUID, user_id: uuid.UUID, last_name: str, first_name: str,
                       patronymic: str | None, birth_date: date | None, sex: str | None) -> Account:
        """A person edits their profile; a parent may correct their child's (PL-3)."""
        if self.relation(actor_id, user_id) not in (Relation.SELF, Relation.PARENT):
            raise Forbidden("profile.forbidden", "You can edit only your own profile and your children's.")
        validate_profile(last_name, first_name, patronymic, birth_date, sex, utcnow().date())
        account = self.get_account(user_id)
        account.update_profile(last_name, first_name, patronymic, birth_date, sex, actor_id)
        self.save(account)
        return account

    def view_person(self, viewer_id: uuid.UUID, person_id: uuid.UUID) -> dict[str, Any]:
        """ID-7, ID-9: a person is seen by themselves, their family and the people who share
        an organization or a chat with them; to anyone else they do not exist."""
        rel = self.relation(viewer_id, person_id)
        if rel is Relation.OTHER and not (self.share_an_organization(viewer_id, person_id)
                                          or self.share_a_chat(viewer_id, person_id)):
            raise NotFound("account.not_found", "No such account.")
        return view(self.get_account(person_id), rel)

    def share_a_chat(self, a: uuid.UUID, b: uuid.UUID) -> bool:
        first, second = self.find(ChatCircle, ChatCircle.create_id(a)), self.find(ChatCircle, ChatCircle.create_id(b))
        return bool(first and second and set(first.chat_ids) & set(second.chat_ids))

    @once_per_event
    def on_chat_members(self, event: CloudEvent) -> bool:
        """messaging's ChatCreated / ChatMembersChanged: who is in which chat (ID-7)."""
        data = event.data
        chat_id = str(data["chat_id"])
        entered = data.get("member_ids") or data.get("added") or []
        left = data.get("removed") or []

        def apply() -> bool:  # a copy applied meanwhile by another consumer: process_once saves nothing
            changed = []
            for user_id in dict.fromkeys(str(u) for u in entered):
                circle = self.find(ChatCircle, ChatCircle.create_id(user_id)) or ChatCircle(user_id=uuid.UUID(user_id))
                if chat_id not in circle.chat_ids:
                    circle.enter(chat_id)
                    changed.append(circle)
            for user_id in dict.fromkeys(str(u) for u in left):
                circle = self.find(ChatCircle, ChatCircle.create_id(user_id))
                if circle is not None and chat_id in circle.chat_ids:
                    circle.leave(chat_id)
                    changed.append(circle)
            return self.process_once(event.id, *changed)

        return self.retrying(apply)

    def share_an_organization(self, a: uuid.UUID, b: uuid.UUID) -> bool:
        first, second = self.membership(a), self.membership(b)
        return bool(first and second and set(first.roles) & set(second.roles))

    # -- memberships, from school's events -------------------------------------------
    @once_per_event
    def on_member_joined(self, event: CloudEvent) -> bool:
        data = event.data
        membership = self.find(Membership, Membership.create_id(data["user_id"])) or Membership(
            user_id=data["user_id"])
        membership.add_role(data["organization_id"], data["role"], data.get("class_id"))
        return self.process_once(event.id, membership)

    @once_per_event
    def on_member_left(self, event: CloudEvent) -> bool:
        """school's MemberLeft: the person no longer shares that organization with anyone."""
        membership = self.find(Membership, Membership.create_id(event.data["user_id"]))
        changed = []
        if membership is not None and str(event.data["organization_id"]) in membership.roles:
            membership.leave(event.data["organization_id"])
            changed.append(membership)
        return self.process_once(event.id, *changed)

    @once_per_event
    def on_journal_link(self, event: CloudEvent) -> bool:
        """EJ-2: linking one's e-journal account as a teacher confirms the teacher's profile."""
        data = event.data
        account = self.find(Account, data["user_id"])
        changed = []
        if account is not None and data["role"] == "teacher" and str(data["provider_id"]) not in getattr(
                account, "teacher_confirmed_by", []):
            account.confirm_teacher(data["provider_id"], data["region"])
            changed.append(account)
        return self.process_once(event.id, *changed)

    def membership(self, user_id: uuid.UUID) -> Membership | None:
        return self.find(Membership, Membership.create_id(user_id))

    # -- parent linking (PL-1..PL-8) ---------------------------------------------------
    @staticmethod
    def _invite_token(invite_id: uuid.UUID) -> str:
        return link_token("parent-invite", invite_id)

    def _invite_from_token(self, token: str) -> ParentInvite:
        invite_id = link_id_from_token("parent-invite", token)
        invite = self.find(ParentInvite, invite_id) if invite_id else None
        if invite is None:
            raise NotFound("parent_link.not_found", "This parent link does not exist.")
        return invite

    @command
    def parent_invite(self, student_id: uuid.UUID, now: datetime | None = None,
                      school_says_student: AskOwner | None = None) -> ParentInviteView:
        """The student's parent link: the live one again, or a new one (PL-1, PL-2), with
        how many parents it has linked (PL-5: at two it is used up). Right after joining,
        school's event may not be here yet: school itself is asked (read-your-writes)."""
        now = now or utcnow()
        membership = self.membership(student_id)
        if not confirmed(membership is not None and membership.is_student, school_says_student):
            raise Forbidden("parent_link.students_only", "Only a student can invite their parents.")
        links = self.find(ParentLinks, ParentLinks.create_id(student_id))
        linked = len(links.parents) if links else 0
        index = self.find(ParentInviteIndex, ParentInviteIndex.create_id(student_id))
        if index is not None:
            current: ParentInvite = self.repository.get(index.invite_id)
            if current.live(now):
                return ParentInviteView(current, self._invite_token(current.id), linked)
        invite = ParentInvite(child_id=student_id, expires_at=now + PARENT_INVITE_TTL)
        if index is None:
            index = ParentInviteIndex(child_id=student_id, invite_id=invite.id)
        else:
            index.replace(invite.id)
        self.save(invite, index)
        return ParentInviteView(invite, self._invite_token(invite.id), linked)

    def open_parent_invite(self, token: str, viewer_id: uuid.UUID, now: datetime | None = None) -> dict[str, Any]:
        """What a parent sees on opening the link: the child's data to check (PL-3)."""
        invite = self._live_invite(token, now or utcnow())
        links = self.find(ParentLinks, ParentLinks.create_id(invite.child_id)) or ParentLinks(
            child_id=invite.child_id)
        links.check_can_link(viewer_id)
        child = self.get_account(invite.child_id)
        return {**view(child, Relation.PARENT), "parents_linked": len(links.parents),
                "expires_at": invite.expires_at}

    def preview_parent_invite(self, token: str, now: datetime | None = None) -> dict[str, Any]:
        """What the link shows before anyone signs in (PL-3): enough for a parent to know
        it is their child's (first name, last initial, the schools), nothing more; the
        child's data to check comes once they sign in with their own phone."""
        invite = self._live_invite(token, now or utcnow())
        child = self.get_account(invite.child_id)
        membership = self.membership(invite.child_id)
        return {"first_name": child.first_name, "last_initial": (child.last_name or "")[:1] or None,
                "organization_ids": sorted(membership.organizations_with("student")) if membership else [],
                "expires_at": invite.expires_at}

    def _live_invite(self, token: str, now: datetime) -> ParentInvite:
        invite = self._invite_from_token(token)
        if not invite.live(now):
            raise Gone("parent_link.expired", "This parent link has expired; ask the student for a new one.")
        return invite

    def confirm_parent_link(self, token: str, parent_id: uuid.UUID, consent: bool,
                            child_profile: dict[str, Any] | None = None, now: datetime | None = None) -> uuid.UUID:
        """The parent confirms the child's registration (PL-3, PL-4); at most two (PL-5)."""
        now = now or utcnow()
        if not consent:
            raise Invalid("parent_link.consent_required",
                          "Tick \"I consent to my child using the platform\" to continue.")
        if child_profile is not None:
            validate_profile(child_profile["last_name"], child_profile["first_name"],
                             child_profile.get("patronymic"), child_profile.get("birth_date"),
                             child_profile.get("sex"), now.date())

        def confirm() -> uuid.UUID:
            invite = self._live_invite(token, now)
            child_id = invite.child_id
            if parent_id == child_id:
                raise self_link_error()
            links = self.find(ParentLinks, ParentLinks.create_id(child_id)) or ParentLinks(child_id=child_id)
            link_id = links.link(parent_id, consent_given_at=now, at=now)
            family = self.find(Family, Family.create_id(parent_id)) or Family(user_id=parent_id)
            family.add_child(child_id)
            changed: list[Any] = [links, family]
            if child_profile is not None:
                child = self.get_account(child_id)
                child.update_profile(child_profile["last_name"], child_profile["first_name"],
                                     child_profile.get("patronymic"), child_profile.get("birth_date"),
                                     child_profile.get("sex"), parent_id)
                changed.append(child)
            self.save(*changed)
            return link_id

        return self.retrying(confirm)

    @command
    def unlink_parent(self, actor_id: uuid.UUID, child_id: uuid.UUID, parent_id: uuid.UUID,
                      now: datetime | None = None) -> None:
        """By the parent, or by an admin of a school where the child studies."""
        now = now or utcnow()
        links = self.find(ParentLinks, ParentLinks.create_id(child_id))
        if links is None or str(parent_id) not in links.parents:
            raise NotFound("parent_link.not_found", "This person is not linked as a parent of this child.")
        if actor_id != parent_id and not self._is_admin_of_childs_school(actor_id, child_id):
            raise Forbidden("parent_link.unlink_forbidden",
                            "Only the parent or an admin of the child's school can remove this link.")
        family = self.get_as(Family, Family.create_id(parent_id), "parent_link.not_found", "")
        links.unlink(parent_id, actor_id, now)
        family.remove_child(child_id)
        self.save(links, family)

    def _is_admin_of_childs_school(self, actor_id: uuid.UUID, child_id: uuid.UUID) -> bool:
        actor, child = self.membership(actor_id), self.membership(child_id)
        if actor is None or child is None:
            return False
        return bool(actor.organizations_with("admin") & child.organizations_with("student"))

    def children(self, user_id: uuid.UUID) -> list[dict[str, Any]]:
        kids, _ = self.family_of(user_id)
        return [view(self.get_account(uuid.UUID(c)), Relation.PARENT) for c in sorted(kids)]

    def parents(self, user_id: uuid.UUID) -> list[dict[str, Any]]:
        _, parents = self.family_of(user_id)
        return [view(self.get_account(uuid.UUID(p)), Relation.CHILD) for p in sorted(parents)]
