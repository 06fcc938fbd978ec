"""Helpers for identity's tests."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta, timezone

import pytest

from identity import handlers
from identity.application import IdentityApplication
from shared.contracts import make_event
from shared.contracts.api.identity import UpdateProfile
from shared.store import make_application

T0 = datetime(2026, 9, 1, 8, 0, tzinfo=timezone.utc)


class Clock:
    def __init__(self):
        self.now = T0

    def advance(self, **delta) -> datetime:
        self.now += timedelta(**delta)
        return self.now


class Identity:
    """The application plus verbs that read like the rules."""

    def __init__(self, app: IdentityApplication):
        self.app = app
        self.clock = Clock()
        self.phones = iter(range(1000, 10000))

    def phone(self) -> str:
        return f"+7900123{next(self.phones):04d}"

    def sign_in(self, phone: str | None = None, *, client: str = "10.0.0.1", not_me: bool = False, device: str = "t"):
        phone = phone or self.phone()
        self.clock.advance(seconds=61)
        issued = self.app.request_code(phone, "sms", client, now=self.clock.now)
        return self.app.confirm_code(issued.challenge.id, issued.code, device, not_me=not_me, now=self.clock.now)

    def person(self, last_name="Иванова", first_name="Мария", birth_date=date(2014, 5, 17), sex="female"):
        signed = self.sign_in()
        self.app.update_profile(signed.account.id, UpdateProfile(last_name, first_name, birth_date, sex,
                                                                 user_id=signed.account.id))
        return signed.account.id

    def join(self, user_id: uuid.UUID, role: str, organization_id: uuid.UUID | None = None,
             class_id: uuid.UUID | None = None) -> uuid.UUID:
        organization_id = organization_id or uuid.uuid4()
        event = make_event("school.MemberJoined.v1", {
            "organization_id": organization_id, "user_id": user_id, "role": role, "class_id": class_id,
            "joined_at": self.clock.now}, event_id=f"school:{uuid.uuid4()}:MemberJoined.v1")
        handlers.on_member_joined(self.app, event)
        return organization_id

    def student(self, **profile) -> uuid.UUID:
        user_id = self.person(**profile)
        self.join(user_id, "student", class_id=uuid.uuid4())
        return user_id

    def link_parent(self, child_id: uuid.UUID, parent_id: uuid.UUID) -> uuid.UUID:
        token = self.app.parent_invite(child_id, now=self.clock.now).token
        return self.app.confirm_parent_link(token, parent_id, consent=True, now=self.clock.now)


@pytest.fixture
def identity(store_settings) -> Identity:
    return Identity(make_application(IdentityApplication, "identity", create_table=True, config=store_settings))


@pytest.fixture
def memory_identity(tmp_path) -> Identity:
    from shared.config import settings

    return Identity(make_application(IdentityApplication, "identity", config=settings({"PERSISTENCE": "memory"})))
