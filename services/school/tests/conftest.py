"""Helpers for school's tests: people arrive as identity's events, as they do in production."""

from __future__ import annotations

import itertools
import uuid
from datetime import datetime, timezone

import pytest

from school import handlers
from school.application import CONSOLE, SchoolApplication
from shared.contracts import make_event
from shared.contracts.api.school import CreateClass, CreateInvite, SubmitApplication
from shared.store import make_application

OPERATOR_PHONE = "+79990000001"
_phones = itertools.count(1000)


class School:
    def __init__(self, app: SchoolApplication):
        self.app = app

    def user(self, phone: str | None = None, last_name: str = "Иванов", first_name: str = "Иван") -> uuid.UUID:
        user_id = uuid.uuid4()
        phone = phone or f"+7900555{next(_phones):04d}"
        handlers.on_user_registered(self.app, make_event("identity.UserRegistered.v1", {
            "user_id": user_id, "phone": phone, "registered_via": "phone", "last_name": last_name,
            "first_name": first_name, "registered_at": datetime.now(timezone.utc)},
            event_id=f"identity:{uuid.uuid4()}:UserRegistered.v1"))
        return user_id

    def operator(self) -> uuid.UUID:
        return self.user(OPERATOR_PHONE)

    def organization(self, admin: uuid.UUID | None = None, city: str = "Казань", name: str = "Школа №1",
                     region: str | None = None) -> tuple[uuid.UUID, uuid.UUID]:
        """An approved school and its first admin."""
        admin_phone = f"+7900777{next(_phones):04d}"
        admin = admin or self.user(admin_phone)
        if admin is not None and self.app.get_person(admin).phone is None:
            raise AssertionError("admin without phone")
        application = self.app.submit_application(None, SubmitApplication(name, "school", "RU", city,
                                                                          self.app.get_person(admin).phone, None,
                                                                          region))
        organization = self.app.approve_application(CONSOLE, application.id)
        return organization.id, admin

    def klass(self, organization_id, admin, name="5А", start=2024, end=2031) -> uuid.UUID:
        return self.app.create_class(admin, CreateClass(organization_id, name, start, end)).id

    def member(self, organization_id, admin, role: str, class_id=None, **person) -> uuid.UUID:
        user = self.user(**person)
        token = self.app.create_invite(admin, CreateInvite(organization_id, role, class_id, "7d", None, False))[1]
        self.app.join_by_invite(token, user)
        return user


@pytest.fixture
def school(store_settings, monkeypatch) -> School:
    monkeypatch.setenv("SFERA_OPERATOR_PHONES", OPERATOR_PHONE)
    return School(make_application(SchoolApplication, "school", create_table=True, config=store_settings))
