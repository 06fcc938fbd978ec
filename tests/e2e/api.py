"""A small client of the public API for the end-to-end tests: it reads codes
from the platform's dev inbox like a person would."""

from __future__ import annotations

import itertools
import json
import random
import uuid
from datetime import datetime, timezone
from typing import Any

import pika
import requests

from shared.contracts import make_event
from tests.helpers import eventually

# The tests' people get phones unique in the run. Random ones collided: a run signs in thousands of people out of
# 10^7 numbers (about one colliding pair a run), and a "new" person was then an earlier test's teacher.
_PHONES = itertools.count(random.randrange(10_000_000))
WRITTEN_IN_TESTS = {"+79123456789"}  # test_sign_in_slice's own


def unique_phone() -> str:
    while True:
        phone = f"+7912{next(_PHONES) % 10_000_000:07d}"
        if phone not in WRITTEN_IN_TESTS:
            return phone


class Api:
    def __init__(self, stack):
        self.stack = stack
        self.base = f"{stack.gateway_url}/api/v1"

    def new_phone(self) -> str:
        return unique_phone()

    def call(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> requests.Response:
        headers = kwargs.pop("headers", {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return requests.request(method, f"{self.base}{path}", headers=headers, timeout=15, **kwargs)

    def ok(self, method: str, path: str, token: str | None = None, status: int = 200, **kwargs: Any) -> Any:
        response = self.call(method, path, token, **kwargs)
        assert response.status_code == status, (method, path, response.status_code, response.text)
        return response.json() if response.content else None

    def inbox_code(self, channel: str, to: str) -> str:
        folder = self.stack.var_dir / "outbox" / channel
        key = "".join(ch for ch in to if ch.isalnum() or ch in "@.")

        def newest():
            files = sorted(folder.glob(f"*-{key}-*.json")) if folder.exists() else []
            return files[-1] if files else None

        return json.loads(eventually(newest, what=f"a {channel} to {to} in the dev inbox").read_text())["code"]

    def request_code(self, phone: str, **extra: Any) -> dict:
        return self.ok("POST", "/auth/sign-in-codes", json={"phone": phone, **extra}, status=201)

    def sign_in(self, phone: str | None = None) -> dict:
        phone = phone or self.new_phone()
        challenge = self.request_code(phone)
        code = self.inbox_code("sms", challenge["sent_to"])
        return self.ok("POST", f"/auth/sign-in-codes/{challenge['challenge_id']}/confirmation", json={"code": code})

    def person(self, last_name: str = "Иванова", first_name: str = "Мария", birth_date: str = "2014-05-17",
               sex: str = "female") -> dict:
        session = self.sign_in()
        self.ok("PUT", "/me/profile", session["access_token"], json={
            "last_name": last_name, "first_name": first_name, "birth_date": birth_date, "sex": sex})
        return session

    def organization(self, name: str = "Школа №1", city: str = "Казань", region: str | None = None
                     ) -> tuple[str, dict]:
        """An organization approved by the platform operator, and its first admin's session."""
        admin = self.person("Администраторова", "Анна", "1980-01-01", "female")
        admin_phone = self.ok("GET", "/me", admin["access_token"])["phone"]
        application = self.ok("POST", "/organization-applications", status=201, json={
            "name": name, "kind": "school", "country": "RU", "city": city, "admin_phone": admin_phone,
            "region": region})
        operator = self.operator()
        organization = self.ok("POST", f"/operator/applications/{application['application_id']}/approval",
                               operator["access_token"])
        eventually(lambda: any(o["organization"]["organization_id"] == organization["organization_id"]
                               for o in self.ok("GET", "/me/organizations", admin["access_token"])),
                   what="the admin's phone to become the organization's admin")
        return organization["organization_id"], admin

    def operator(self) -> dict:
        if not hasattr(self, "_operator"):
            from tests.e2e.conftest import OPERATOR_PHONE

            self._operator = self.sign_in(OPERATOR_PHONE)
            eventually(lambda: self.call("GET", "/operator/applications", self._operator["access_token"])
                       .status_code == 200, what="school to learn the operator's phone")
        return self._operator

    def member(self, organization_id: str, admin: dict, role: str, class_id: str | None = None, **person) -> dict:
        """A person who joined by an invite link."""
        invite = self.ok("POST", f"/organizations/{organization_id}/invites", admin["access_token"], status=201,
                         json={"role": role, "class_id": class_id, "validity": "1d", "max_uses": 1})
        session = self.person(**person) if person else self.sign_in()
        self.ok("POST", f"/invites/{invite['token']}/membership", session["access_token"], status=201)
        return session

    def chat_once_members_known(self, organization_id: str, creator: dict, name: str, member_ids: list[str]) -> str:
        """A manual chat of the school, made as soon as messaging has learnt (from school's events)
        that its members joined; its id."""
        made: dict = {}

        def create() -> bool:
            response = self.call("POST", "/chats", creator["access_token"], json={
                "organization_id": organization_id, "name": name, "member_ids": member_ids})
            if response.status_code == 201:
                made.update(response.json())
            return bool(made)

        eventually(create, what="messaging to learn the members joined")
        return made["chat_id"]

    def publish_school_event(self, data: dict) -> None:
        """What school's relay will publish once the school issue lands: published
        here to the same exchange, in the same envelope."""
        self.publish(make_event("school.MemberJoined.v1", {**data, "joined_at": datetime.now(timezone.utc)},
                                event_id=f"school:{uuid.uuid4()}:MemberJoined.v1"))

    def publish(self, event) -> None:
        """Publish an integration event as its service's relay does: persistent and confirmed, to
        its contract's exchange with the type's name and version as the routing key."""
        connection = pika.BlockingConnection(pika.URLParameters(self.stack.amqp_uri))
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish(event.contract.exchange, event.contract.routing_key, event.to_json(),
                              pika.BasicProperties(content_type="application/json", message_id=event.id,
                                                   delivery_mode=2, type=event.type))
        connection.close()
