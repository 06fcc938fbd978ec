"""One running platform (every service, relay and the gateway, on RabbitMQ and
PostgreSQL) shared by the end-to-end tests."""

from __future__ import annotations

import pytest

from tests.e2e.api import Api

OPERATOR_PHONE = "+79990000001"


@pytest.fixture(scope="package")
def platform(tmp_path_factory, rabbitmq, postgres):
    """Stopped once the last test of its package has run (package scope): the e2e platform used to idle on to the
    end of the run, through the reliability tests that time their recoveries and the web tests' own platform."""
    from conftest import new_stack

    # Every test signs in from 127.0.0.1: lift the per-client hourly limit, and
    # shorten the countdown between two codes to one phone to 2 s (both are
    # tested at their production values against the application).
    stack = new_stack(tmp_path_factory.mktemp("platform"), rabbitmq, postgres, "postgres",
                      SFERA_CODES_PER_HOUR_PER_CLIENT="100000", SFERA_CODE_RESEND_SECONDS="2",
                      SFERA_OPERATOR_PHONES=OPERATOR_PHONE, SFERA_DOCUMENT_MAX_BYTES="200000",
                      SFERA_ATTACHMENT_MAX_BYTES="300000", SFERA_UPLOAD_DAILY_BYTES_PER_PERSON="1000000",
                      SFERA_UPLOAD_DAILY_BYTES_PER_SCHOOL="1500000")
    try:
        stack.prepare()
        stack.start_all()
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="package")
def api(platform) -> Api:
    return Api(platform)


@pytest.fixture(scope="module")
def klass(api):
    """A school with a class of two pupils (for the messaging tests of a module)."""
    org, admin = api.organization("Школа чатов", "Уфа")
    five = api.ok("POST", f"/organizations/{org}/classes", admin["access_token"], status=201,
                  json={"name": "5А", "start_year": 2025, "end_year": 2032})["class_id"]
    pupils = [api.member(org, admin, "student", five) for _ in range(2)]
    return {"org": org, "admin": admin, "class_id": five, "pupils": pupils}


@pytest.fixture(scope="module")
def room(api, klass):
    """The school admin and three pupils in a chat the calls start from."""
    third = api.member(klass["org"], klass["admin"], "student", klass["class_id"])
    people = [klass["admin"], *klass["pupils"], third]
    ids = [api.ok("GET", "/me", p["access_token"])["user_id"] for p in people]
    # messaging learns the third pupil from school's events (CI: a chat made at once refused chat.not_members)
    chat_id = api.chat_once_members_known(klass["org"], klass["admin"], "Урок по видеосвязи", ids[1:])
    return {"people": people, "ids": ids, "chat_id": chat_id, "org": klass["org"]}
