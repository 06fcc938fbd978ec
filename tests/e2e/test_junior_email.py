"""ID-4 across processes: identity asks school (here the contract's stand-in,
tests/fixtures/fake_school.py) whether an invite allows e-mail registration,
and the junior registers by e-mail through the gateway; the code is delivered
by the SMTP adapter to a real SMTP server started by the test."""

from __future__ import annotations

import re

import pytest
import requests
from aiosmtpd.controller import Controller

from tests.helpers import Mailbox, eventually
from tools.devstack.infra import free_port

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def smtp():
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, mailbox
    controller.stop()


@pytest.fixture(scope="module")
def junior_platform(tmp_path_factory, rabbitmq, postgres, smtp):
    from conftest import new_stack

    controller, _ = smtp
    stack = new_stack(tmp_path_factory.mktemp("juniors"), rabbitmq, postgres, "postgres",
                      SFERA_MAIL_ADAPTER="smtp", SFERA_SMTP_PORT=str(controller.port))
    try:
        stack.prepare(migrate=["identity"], topology=["identity.service:IdentityService"])
        stack.start_service("identity")
        stack.start_service("school", "tests.fixtures.fake_school:FakeSchool", port=free_port())
        stack.start_relay("identity")
        stack.start_gateway()
        stack.wait_healthy()
        yield stack
    finally:
        stack.stop()


def test_a_junior_registers_by_email_through_an_invite_that_allows_it_ID_4(junior_platform, smtp):
    _, mailbox = smtp
    api = f"{junior_platform.gateway_url}/api/v1"
    issued = requests.post(f"{api}/auth/email-codes", json={"email": "Kid@Example.org",
                                                            "invite_token": "junior-class-2a"}, timeout=10)
    assert issued.status_code == 201, issued.text
    assert issued.json()["sent_to"] == "kid@example.org"
    message = eventually(lambda: [m for m in mailbox.messages if "kid@example.org" in m.rcpt_tos],
                         what="the code e-mail")[-1]
    code = re.search(r"code is (\d{6})", message.content.decode()).group(1)
    signed = requests.post(f"{api}/auth/email-codes/{issued.json()['challenge_id']}/confirmation",
                           json={"code": code}, timeout=10)
    assert signed.status_code == 200 and signed.json()["new_account"] is True
    me = requests.get(f"{api}/me", headers={"Authorization": f"Bearer {signed.json()['access_token']}"},
                      timeout=10).json()
    assert (me["email"], me["phone"], me["registered_via"]) == ("kid@example.org", None, "email")


@pytest.mark.parametrize("token, status, code", [
    ("senior-class-9b", 403, "sign_in.email_not_allowed"),
    ("expired-invite", 410, "invite.expired"),
    ("no-such-invite", 404, "invite.not_found"),
])
def test_email_registration_is_refused_without_a_junior_invite_ID_4(junior_platform, token, status, code):
    response = requests.post(f"{junior_platform.gateway_url}/api/v1/auth/email-codes",
                             json={"email": "kid2@example.org", "invite_token": token}, timeout=10)
    assert (response.status_code, response.json()["error"]["code"]) == (status, code)
