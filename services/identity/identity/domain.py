"""Identity's aggregates and domain rules (docs/rules.md ID-*, PL-*).

- ``SignInChallenge``: a one-time code sent to a phone (SMS or flash call) or an
  e-mail (juniors, ID-4); stored hashed, expires, dies after a few wrong tries.
- ``Account``: one person's one account (ID-3) with their profile (ID-5),
  password hash (ID-2) and whether their phone was detached (ID-6).
- ``PhoneIndex`` / ``EmailIndex``: ids derived from the credential, so two
  concurrent registrations of one phone collide and only one wins (ID-3).
- ``Session``: a signed-in device with a rotating refresh token (ID-8).
- ``ParentInvite``: the student's link for parents (PL-1, PL-2);
  ``ParentLinks``: a child's parents, at most two (PL-5); ``Family``: one
  person's children and parents as seen from their profile (PL-4, PL-7).
- ``Membership``: what identity knows of a person's roles in organizations,
  projected from school's events (who is a student, who administers whom).
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import date, datetime, timedelta

from eventsourcing.domain import Aggregate, event

from shared.compare import same_secret
from shared.contracts import outdated
from shared.contracts.api.identity import SEXES  # ID-5: the API says them too
from shared.errors import Conflict, Forbidden, Gone, Invalid, TooManyRequests
from shared.text import hidden_characters

CODE_TTL = timedelta(minutes=5)
MAX_ATTEMPTS = 5
MAX_PARENTS = 2
PARENT_INVITE_TTL = timedelta(days=7)
NAMESPACE = uuid.UUID("6f1c1f0e-6a53-4b9a-9a51-5f9a9f3d7c11")
CHANNELS = ("sms", "flash_call", "email")


def derived_id(kind: str, key: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"{kind}:{key}")


def hash_code(secret: str, salt: str, code: str) -> str:
    """Codes and tokens are stored as keyed, salted hashes, never in clear (ID-9)."""
    return hmac.new(secret.encode(), f"{salt}:{code}".encode(), hashlib.sha256).hexdigest()


# -- sign-in -----------------------------------------------------------------


class SignInChallenge(Aggregate):
    """A one-time code sent to a phone or an e-mail address (ID-1, ID-4)."""

    @event("Issued")
    def __init__(self, address: str, channel: str, salt: str, code_hash: str, expires_at: datetime,
                 resend_at: datetime, invite_token: str | None = None):
        self.address = address  # E.164 phone, or e-mail
        self.channel = channel
        self.salt = salt
        self.code_hash = code_hash
        self.expires_at = expires_at
        self.resend_at = resend_at
        self.invite_token = invite_token
        self.failed_attempts = 0
        self.account_id: uuid.UUID | None = None
        self.confirmed_at: datetime | None = None

    @property
    def phone(self) -> str | None:
        return self.address if self.channel != "email" else None

    @property
    def email(self) -> str | None:
        return self.address if self.channel == "email" else None

    @property
    def confirmed(self) -> bool:
        return self.account_id is not None

    def check(self, secret: str, code: str, now: datetime) -> bool:
        """Refuses a dead challenge; records a wrong code; True for the right one."""
        if self.confirmed:
            raise Gone("sign_in.already_used", "This code was already used; request a new one.")
        if self.failed_attempts >= MAX_ATTEMPTS:
            raise TooManyRequests("sign_in.too_many_attempts", "Too many wrong codes; request a new one.")
        if now >= self.expires_at:
            raise Gone("sign_in.code_expired", "The code has expired; request a new one.")
        if same_secret(self.code_hash, hash_code(secret, self.salt, code)):
            return True
        self.fail_attempt()
        return False

    @property
    def attempts_left(self) -> int:
        return max(0, MAX_ATTEMPTS - self.failed_attempts)

    @event("AttemptFailed")
    def fail_attempt(self) -> None:
        self.failed_attempts += 1

    @event("Confirmed")
    def confirm(self, account_id: uuid.UUID, at: datetime) -> None:
        self.account_id = account_id
        self.confirmed_at = at


# -- accounts ----------------------------------------------------------------


def validate_profile(last_name: str, first_name: str, patronymic: str | None, birth_date: date | None,
                     sex: str | None, today: date) -> None:
    """ID-5: real names (patronymic optional), a plausible date of birth, a sex."""
    problems: dict[str, str] = {}
    for field, value in (("last_name", last_name), ("first_name", first_name)):
        if not value or not value.strip():
            problems[field] = "Required."
        elif len(value) > 64 or any(ch.isdigit() for ch in value) or hidden_characters(value):
            problems[field] = "Letters only, at most 64."
    if patronymic is not None and (len(patronymic) > 64 or any(ch.isdigit() for ch in patronymic)
                                   or hidden_characters(patronymic)):
        problems["patronymic"] = "Letters only, at most 64."
    if birth_date is not None and not (date(today.year - 120, 1, 1) <= birth_date <= today):
        problems["birth_date"] = "Not a plausible date of birth."
    if sex is not None and sex not in SEXES:
        problems["sex"] = f"One of {', '.join(SEXES)}."
    if problems:
        raise Invalid("profile.invalid", "The profile is not valid.", {"fields": problems})


class Account(Aggregate):
    """A person's one account (ID-3), never a social-network profile (ID-7)."""

    @event("Registered")
    def __init__(self, phone: str | None, email: str | None, registered_via: str, invite_token: str | None = None):
        self.phone = phone
        self.email = email
        self.registered_via = registered_via
        self.invite_token = invite_token
        self.last_name: str | None = None
        self.first_name: str | None = None
        self.patronymic: str | None = None
        self.birth_date: date | None = None
        self.sex: str | None = None
        self.password_hash: str | None = None
        self.phone_detached = False
        self.teacher_confirmed_by: list[str] = []  # e-journals whose link confirmed a teacher (EJ-2)
        self.journal_reports: dict[str, dict] = {}  # e-journal -> the newest link report applied: at, linked

    # -- EJ-2: the e-journal links (ejournal_bridge's EjournalAccountLinked / EjournalAccountUnlinked) ----------
    def journal_report_is_stale(self, provider_id: uuid.UUID, at: datetime | None, linked: bool) -> bool:
        """Linked and Unlinked come through two queues, so out of order: a report older than the newest applied
        for that e-journal changes nothing. At one instant a link beats an unlink (the bridge unlinks an account
        from its former journal person and links it to the new one in one step, at one time)."""
        kept = getattr(self, "journal_reports", {}).get(str(provider_id))
        return at is not None and kept is not None and (at, linked) < (kept["at"], kept["linked"])

    def _journal_reported(self, provider_id: uuid.UUID, at: datetime | None, linked: bool) -> None:
        if at is not None:
            self.journal_reports = {**getattr(self, "journal_reports", {}), str(provider_id): {"at": at,
                                                                                               "linked": linked}}

    @event("TeacherConfirmed")
    def confirm_teacher(self, provider_id: uuid.UUID, region: str, at: datetime | None = None) -> None:
        """Linked as a teacher of that e-journal: the profile is a confirmed teacher's (EJ-2)."""
        confirmed_by = getattr(self, "teacher_confirmed_by", [])
        if str(provider_id) not in confirmed_by:
            self.teacher_confirmed_by = [*confirmed_by, str(provider_id)]
        self._journal_reported(provider_id, at, linked=True)

    @event("JournalLinkChanged")
    def journal_link_changed(self, provider_id: uuid.UUID, linked: bool, at: datetime | None) -> None:
        """Unlinked from that e-journal, or linked there as someone not a teacher: it confirms no teacher (EJ-2);
        the badge stays while another e-journal's link confirms one."""
        self.teacher_confirmed_by = [p for p in getattr(self, "teacher_confirmed_by", []) if p != str(provider_id)]
        self._journal_reported(provider_id, at, linked)

    @property
    def display_name(self) -> str:
        return " ".join(p for p in (self.last_name, self.first_name) if p) or "—"

    @property
    def profile_complete(self) -> bool:
        return bool(self.last_name and self.first_name and self.birth_date and self.sex)

    @event("ProfileUpdated")
    def update_profile(self, last_name: str, first_name: str, patronymic: str | None, birth_date: date | None,
                       sex: str | None, updated_by: uuid.UUID) -> None:
        self.last_name = last_name.strip()
        self.first_name = first_name.strip()
        self.patronymic = patronymic.strip() if patronymic else None
        self.birth_date = birth_date
        self.sex = sex

    @event("PasswordSet")
    def set_password(self, password_hash: str) -> None:
        self.password_hash = password_hash

    @event("PhoneDetached")
    def detach_phone(self, phone: str, detached_at: datetime, new_account_id: uuid.UUID) -> None:
        """ID-6: the number now belongs to someone else; this account keeps its data."""
        self.phone = None
        self.phone_detached = True


class PhoneIndex(Aggregate):
    """Points a phone number at its account (ID-3). Re-pointed when detached (ID-6)."""

    @staticmethod
    def create_id(phone: str, **_: object) -> uuid.UUID:
        return derived_id("phone", phone)

    @event("Assigned")
    def __init__(self, phone: str, account_id: uuid.UUID):
        self.phone = phone
        self.account_id = account_id

    @event("Reassigned")
    def reassign(self, account_id: uuid.UUID) -> None:
        self.account_id = account_id


class EmailIndex(Aggregate):
    """Points an e-mail address at its account (juniors, ID-4)."""

    @staticmethod
    def create_id(email: str, **_: object) -> uuid.UUID:
        return derived_id("email", email.lower())

    @event("Assigned")
    def __init__(self, email: str, account_id: uuid.UUID):
        self.email = email
        self.account_id = account_id


# -- sessions ----------------------------------------------------------------


class Session(Aggregate):
    """One signed-in device (ID-8). Its refresh token rotates on every use; a
    rotated token used again means it was stolen: the session is revoked."""

    @event("Started")
    def __init__(self, user_id: uuid.UUID, device: str, method: str, salt: str, token_hash: str, at: datetime):
        self.user_id = user_id
        self.device = device
        self.method = method  # how the person proved who they are: "code" or "password"
        self.salt = salt
        self.token_hash = token_hash
        self.previous_hashes: list[str] = []
        self.started_at = at
        self.last_used_at = at
        self.revoked_at: datetime | None = None
        self.revoke_reason: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def matches_current(self, token_hash: str) -> bool:
        return same_secret(self.token_hash, token_hash)

    def was_rotated(self, token_hash: str) -> bool:
        return any(same_secret(h, token_hash) for h in self.previous_hashes)

    @event("Refreshed")
    def rotate(self, token_hash: str, at: datetime) -> None:
        self.previous_hashes = (self.previous_hashes + [self.token_hash])[-20:]
        self.token_hash = token_hash
        self.last_used_at = at

    @event("Revoked")
    def revoke(self, at: datetime, reason: str) -> None:
        self.revoked_at = at
        self.revoke_reason = reason


class SessionIndex(Aggregate):
    """The sessions of one person, for the list and for "sign out everywhere"."""

    @staticmethod
    def create_id(user_id: uuid.UUID, **_: object) -> uuid.UUID:
        return derived_id("sessions", str(user_id))

    @event("Opened")
    def __init__(self, user_id: uuid.UUID):
        self.user_id = user_id
        self.session_ids: list[uuid.UUID] = []

    @event("SessionAdded")
    def add(self, session_id: uuid.UUID) -> None:
        self.session_ids = (self.session_ids + [session_id])[-100:]


# -- school roles, as identity learns them from school's events ----------------


class Membership(Aggregate):
    """A person's roles per organization (and class), from school's MemberJoined,
    MemberRoleChanged (SC-9) and MemberLeft, the newest report per organization
    winning. Identity needs it for PL-1 (only a student invites parents) and for a
    school admin unlinking a parent of a student of their school."""

    @staticmethod
    def create_id(user_id: uuid.UUID, **_: object) -> uuid.UUID:
        return derived_id("membership", str(user_id))

    @event("Opened")
    def __init__(self, user_id: uuid.UUID):
        self.user_id = user_id
        self.roles: dict[str, list[str]] = {}  # organization id -> roles
        self.classes: dict[str, str] = {}  # organization id -> class id (students)
        self.reported_at: dict[str, datetime] = {}  # organization id -> the newest school report applied

    def is_stale(self, organization_id: uuid.UUID, at: datetime | None) -> bool:
        """School's MemberJoined, MemberRoleChanged and MemberLeft come through a queue each, so out of order:
        a report older than the newest applied for that organization changes nothing (no old role comes back)."""
        kept = getattr(self, "reported_at", {}).get(str(organization_id))
        return at is not None and kept is not None and at < kept

    def _reported(self, organization_id: uuid.UUID, at: datetime | None) -> None:
        if at is not None:
            self.reported_at = {**getattr(self, "reported_at", {}), str(organization_id): at}

    @event("RoleAdded")
    def add_role(self, organization_id: uuid.UUID, role: str, class_id: uuid.UUID | None,
                 at: datetime | None = None) -> None:
        roles = self.roles.setdefault(str(organization_id), [])
        if role not in roles:
            roles.append(role)
        if class_id is not None and role == "student":
            self.classes[str(organization_id)] = str(class_id)
        self._reported(organization_id, at)

    @event("RolesSet")
    def set_roles(self, organization_id: uuid.UUID, roles: list[str], class_id: uuid.UUID | None,
                  at: datetime | None) -> None:
        """All the person's roles there now (school's MemberJoined ``roles``, MemberRoleChanged: SC-9)."""
        org = str(organization_id)
        if roles:
            self.roles[org] = list(dict.fromkeys(roles))
        else:
            self.roles.pop(org, None)
        if "student" not in roles:
            self.classes.pop(org, None)
        elif class_id is not None:
            self.classes[org] = str(class_id)
        self._reported(organization_id, at)

    @event("Left")
    def leave(self, organization_id: uuid.UUID, at: datetime | None = None) -> None:
        self.roles.pop(str(organization_id), None)
        self.classes.pop(str(organization_id), None)
        self._reported(organization_id, at)

    @property
    def is_student(self) -> bool:
        return any("student" in roles for roles in self.roles.values())

    def organizations_with(self, role: str) -> set[str]:
        return {org for org, roles in self.roles.items() if role in roles}


class ChatCircle(Aggregate):
    """The chats a person is in, from messaging's ChatCreated/ChatMembersChanged:
    people who share a chat see each other's names (ID-7), whatever their schools."""

    @staticmethod
    def create_id(user_id: uuid.UUID, **_: object) -> uuid.UUID:
        return derived_id("chat-circle", str(user_id))

    @event("Opened")
    def __init__(self, user_id: uuid.UUID):
        self.user_id = user_id
        self.chat_ids: list[str] = []
        self.versions: dict[str, int] = {}  # chat id -> the chat's version this person's place in it is as of

    def knows_newer(self, chat_id: str, version: int | None) -> bool:
        """Whether this person's place in the chat is known as of that chat version or a later one: an event of an
        older version (its events come through separate queues, in any order) then changes nothing. An event
        without a version (from before they had one) is applied as it comes."""
        return outdated(version, getattr(self, "versions", {}).get(chat_id, 0))

    @event("Entered")
    def enter(self, chat_id: uuid.UUID, version: int | None = None) -> None:
        if str(chat_id) not in self.chat_ids:
            self.chat_ids.append(str(chat_id))
        self._as_of(chat_id, version)

    @event("Left")
    def leave(self, chat_id: uuid.UUID, version: int | None = None) -> None:
        if str(chat_id) in self.chat_ids:
            self.chat_ids.remove(str(chat_id))
        self._as_of(chat_id, version)

    def _as_of(self, chat_id: uuid.UUID, version: int | None) -> None:
        if version is not None:
            self.__dict__.setdefault("versions", {})[str(chat_id)] = version


# -- parents -----------------------------------------------------------------


class ParentInvite(Aggregate):
    """The link a student gives their parents (PL-1, PL-2). One live invite per
    student: asking again shows the same one while it is valid.

    It works only within the child's invite generation it was issued in (``ParentLinks.invite_generation``):
    unlinking a parent or revoking the link ends that generation, so no token issued before works again, even
    one whose own ``Revoked`` a concurrent command missed. ``generation`` is None for an invite issued before
    generations were kept: it counts as generation 0, so it stops working at the child's first unlink or
    revocation, those from before this change too (their events count when ParentLinks is replayed). Such an
    invite issued after an earlier unlink is refused as well, and the child is shown a new one: the safe side,
    for the few days such invites live. ``revoke`` records who and when: no ``Revoked`` was stored before (nothing
    called it), so its arguments are new with no old events to read."""

    @event("Created")
    def __init__(self, child_id: uuid.UUID, expires_at: datetime, generation: int | None = None):
        self.child_id = child_id
        self.expires_at = expires_at
        self.generation = generation
        self.revoked = False

    def live(self, now: datetime) -> bool:
        return not self.revoked and now < self.expires_at

    @event("Revoked")
    def revoke(self, revoked_by: uuid.UUID, revoked_at: datetime) -> None:
        self.revoked = True


class ParentInviteIndex(Aggregate):
    """A student's current parent invite."""

    @staticmethod
    def create_id(child_id: uuid.UUID, **_: object) -> uuid.UUID:
        return derived_id("parent-invite", str(child_id))

    @event("Opened")
    def __init__(self, child_id: uuid.UUID, invite_id: uuid.UUID):
        self.child_id = child_id
        self.invite_id = invite_id

    @event("Replaced")
    def replace(self, invite_id: uuid.UUID) -> None:
        self.invite_id = invite_id


class ParentLinks(Aggregate):
    """A child's parents: at most two (PL-5), never the child themself (PL-6).
    Its id derives from the child, so two parents confirming at once race on
    one aggregate version and a third is refused.

    It also holds the child's invite generation, which every unlink and every revocation of the link ends: a
    confirmation decides on it (``check_invite``) in the record it writes, so a confirmation and an unlink (or a
    revocation) at once conflict, and the one that runs again reads the new generation and refuses the old
    token. On the invite alone they would not: the confirmation never writes it, so one that read it live just
    before it was revoked would link with it.

    ``ParentUnlinked`` events stored before the generation was kept raise it on replay too, as they should: an
    invite issued before them is from an ended generation."""

    @staticmethod
    def create_id(child_id: uuid.UUID, **_: object) -> uuid.UUID:
        return derived_id("parents", str(child_id))

    @event("Opened")
    def __init__(self, child_id: uuid.UUID):
        self.child_id = child_id
        self.parents: dict[str, str] = {}  # parent id -> link id
        self.invite_generation = 0  # raised by each unlink and each revocation of the child's link

    def issued_now(self, invite: ParentInvite) -> bool:
        """Whether the invite is from the current generation (one from before generations were kept is 0)."""
        return (invite.generation or 0) == self.invite_generation

    def check_invite(self, invite: ParentInvite) -> None:
        """PL-5, PL-2: a revoked invite, or one from before an unlink or revocation, links nobody."""
        if invite.revoked or not self.issued_now(invite):
            raise Gone("parent_link.revoked",
                       "This parent link was replaced by a new one; ask the student to show the new link.")

    def check_can_link(self, parent_id: uuid.UUID) -> None:
        if parent_id == self.child_id:
            raise self_link_error()
        if str(parent_id) in self.parents:
            raise Conflict("parent_link.already_linked", "You are already linked to this child.")
        if len(self.parents) >= MAX_PARENTS:
            raise Forbidden("parent_link.limit_reached",
                            "This child already has two parents linked; the link no longer works.")

    def link(self, parent_id: uuid.UUID, consent_given_at: datetime, at: datetime) -> uuid.UUID:
        self.check_can_link(parent_id)
        link_id = uuid.uuid4()
        self._linked(self.child_id, parent_id, link_id, len(self.parents) + 1, consent_given_at, at)
        return link_id

    @event("ParentLinked")
    def _linked(self, child_id: uuid.UUID, parent_id: uuid.UUID, link_id: uuid.UUID, parent_number: int,
                consent_given_at: datetime, linked_at: datetime) -> None:
        self.parents[str(parent_id)] = str(link_id)

    def unlink(self, parent_id: uuid.UUID, unlinked_by: uuid.UUID, at: datetime) -> None:
        self._unlinked(self.child_id, parent_id, uuid.UUID(self.parents[str(parent_id)]), unlinked_by, at)

    @event("ParentUnlinked")
    def _unlinked(self, child_id: uuid.UUID, parent_id: uuid.UUID, link_id: uuid.UUID, unlinked_by: uuid.UUID,
                  unlinked_at: datetime) -> None:
        self.parents.pop(str(parent_id), None)
        self.invite_generation += 1  # the token they used (and any other) links nobody any more

    @event("InviteRevoked")
    def revoke_invite(self, revoked_by: uuid.UUID, revoked_at: datetime) -> None:
        """The child, a parent or the school's admin revoked the child's link (PL-2): a new one is made when the
        child next asks for it."""
        self.invite_generation += 1


class Family(Aggregate):
    """The children a person is a parent of (PL-4, PL-7), for their profile."""

    @staticmethod
    def create_id(user_id: uuid.UUID, **_: object) -> uuid.UUID:
        return derived_id("family", str(user_id))

    @event("Opened")
    def __init__(self, user_id: uuid.UUID):
        self.user_id = user_id
        self.children: list[str] = []

    @event("ChildAdded")
    def add_child(self, child_id: uuid.UUID) -> None:
        if str(child_id) not in self.children:
            self.children.append(str(child_id))

    @event("ChildRemoved")
    def remove_child(self, child_id: uuid.UUID) -> None:
        self.children = [c for c in self.children if c != str(child_id)]


def self_link_error() -> Forbidden:
    """PL-6: a student opening their own parent link, with the three ways out."""
    return Forbidden(
        "parent_link.self_link",
        "You are signed in as the student this link is for: a student cannot be their own parent.",
        {"ways_out": [
            "Open the link on another device or in another browser.",
            "Open the link in a private (incognito) window.",
            "Sign the student out first, then open the link and sign in as the parent.",
        ]},
    )
