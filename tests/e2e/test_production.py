"""Production mode (issue #12): with ``SFERA_ENV=production`` every process refuses to
start on a repository default (dev-only secrets, the dev inbox, http:// public
URLs) and starts with proper values; tokens the platform did not issue as it
issues them (no session, a lifetime beyond the TTL) are refused through the
gateway in any mode."""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
import requests

from shared.platform import SERVICES
from tests.e2e.api import unique_phone
from tests.helpers import eventually
from tools.devstack.infra import free_port

pytestmark = pytest.mark.e2e


class FakeSmsGateway:
    """The generic HTTP SMS gateway production uses instead of the dev inbox: keeps what it was asked to send."""

    def __init__(self):
        self.messages: list[dict] = []
        sent = self.messages

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                sent.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(202)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def code_for(self, phone: str) -> str:
        found = eventually(lambda: [m for m in self.messages if m["to"] == phone], what=f"an SMS to {phone}")
        return re.search(r"\d{6}", found[-1]["text"]).group(0)


def production_env(stack, rabbitmq, sms_url: str) -> dict[str, str]:
    """Every value production mode asks for, none of them a repository default."""
    user, password = f"prod-{uuid.uuid4().hex[:8]}", secrets.token_urlsafe(24)
    rabbitmq.add_user(user, password, vhost=stack.config.vhost)
    return {
        "SFERA_ENV": "production",
        "SFERA_AMQP_URI": f"amqp://{user}:{password}@127.0.0.1:{rabbitmq.port}/{stack.config.vhost}",
        "SFERA_JWT_SECRET": secrets.token_urlsafe(48),
        "SFERA_CODE_SECRET": secrets.token_urlsafe(48),
        "SFERA_SFU_TOKEN_SECRET": secrets.token_urlsafe(48),
        "SFERA_SECRETS_KEYS": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "SFERA_SMS_ADAPTER": "http",
        "SFERA_SMS_GATEWAY_URL": sms_url,
        "SFERA_SMS_GATEWAY_TOKEN": secrets.token_urlsafe(16),
        "SFERA_MAIL_ADAPTER": "smtp",
        "SFERA_PUBLIC_URL": "https://sfera.example.org",
        "SFERA_SFU_URL": "wss://sfu.example.org/ws",
    }


def start_refused(stack) -> list[str]:
    """Every kind of process, in production mode on the repository's defaults."""
    names = []
    for service in SERVICES:
        names.append(stack.start_service(f"{service}-refused", path=service, port=free_port(),
                                         SFERA_ENV="production").name)
    names.append(stack.start_relay("identity", SFERA_ENV="production").name)
    names.append(stack.start_sfu("sfu-refused", SFERA_ENV="production").name)
    names.append(stack.start_gateway("gateway-refused", port=free_port(), SFERA_ENV="production").name)
    return names


def test_every_process_refuses_to_start_in_production_on_repository_defaults(make_stack):
    stack = make_stack("sqlite")
    names = start_refused(stack)
    for name in names:
        code = stack.wait_exit(name, timeout=90)
        log = (stack.log_dir / f"{name}.log").read_text()
        assert code not in (None, 0), (name, code, log[-2000:])
        assert "SFERA_ENV=production" in log, (name, log[-2000:])
        for variable in ("SFERA_JWT_SECRET", "SFERA_CODE_SECRET", "SFERA_SFU_TOKEN_SECRET", "SFERA_SECRETS_KEYS",
                         "SFERA_SMS_ADAPTER", "SFERA_MAIL_ADAPTER", "SFERA_PUBLIC_URL", "SFERA_SFU_URL",
                         "SFERA_AMQP_URI"):
            assert variable in log, (name, variable, log[-3000:])


def test_a_refusal_names_only_what_is_wrong(make_stack, rabbitmq):
    stack = make_stack("sqlite")
    env = production_env(stack, rabbitmq, "http://127.0.0.1:9")
    env["SFERA_PUBLIC_URL"] = "http://sfera.example.org"
    managed = stack.start_relay("identity", **env)
    assert stack.wait_exit(managed.name, timeout=90) not in (None, 0)
    log = (stack.log_dir / f"{managed.name}.log").read_text()
    assert "SFERA_PUBLIC_URL" in log and "SFERA_JWT_SECRET" not in log, log[-2000:]


def test_a_fault_injection_switch_is_refused_in_production(make_stack, rabbitmq):
    """A relay and a service on proper values but with a reliability test's crash switch set do not start."""
    stack = make_stack("sqlite")
    env = production_env(stack, rabbitmq, "http://127.0.0.1:9")
    relay = stack.start_relay("identity", **env, SFERA_FAULT_RELAY_KILL_AFTER_PUBLISH="1")
    service = stack.start_service("identity-faulty", path="identity", port=free_port(), **env,
                                  SFERA_FAULT_CONSUMER_KILL_AFTER_COMMIT="1")
    for managed, variable in ((relay, "SFERA_FAULT_RELAY_KILL_AFTER_PUBLISH"),
                              (service, "SFERA_FAULT_CONSUMER_KILL_AFTER_COMMIT")):
        assert stack.wait_exit(managed.name, timeout=90) not in (None, 0)
        log = (stack.log_dir / f"{managed.name}.log").read_text()
        assert variable in log and "fault injection" in log and "SFERA_JWT_SECRET" not in log, log[-2000:]


@pytest.fixture(scope="module")
def production(tmp_path_factory, rabbitmq, postgres):
    """Identity, its relay, an SFU and the gateway in production mode, codes sent through an HTTP SMS gateway."""
    from conftest import new_stack

    sms = FakeSmsGateway()
    stack = new_stack(tmp_path_factory.mktemp("production"), rabbitmq, postgres, "sqlite")
    try:
        stack.prepare()
        env = production_env(stack, rabbitmq, sms.url)
        stack.start_service("identity", **env)
        stack.start_relay("identity", **env)
        stack.start_sfu(**env)
        stack.start_gateway(**env, SFERA_TRUST_FORWARDED_FOR="yes")  # tests speak for several addresses
        stack.wait_healthy()
        yield stack, env, sms
    finally:
        stack.stop()
        sms.server.shutdown()


def sign_in(stack, sms: FakeSmsGateway) -> dict:
    base = f"{stack.gateway_url}/api/v1"
    phone = unique_phone()
    challenge = requests.post(f"{base}/auth/sign-in-codes", json={"phone": phone}, timeout=15)
    assert challenge.status_code == 201, challenge.text
    confirmed = requests.post(f"{base}/auth/sign-in-codes/{challenge.json()['challenge_id']}/confirmation",
                              json={"code": sms.code_for(challenge.json()["sent_to"])}, timeout=15)
    assert confirmed.status_code == 200, confirmed.text
    return confirmed.json()


def me(stack, token: str) -> requests.Response:
    return requests.get(f"{stack.gateway_url}/api/v1/me", headers={"Authorization": f"Bearer {token}"}, timeout=15)


def test_processes_start_in_production_with_proper_values_and_sign_in_works(production):
    stack, _, sms = production
    assert not stack.dead_processes()
    assert me(stack, sign_in(stack, sms)["access_token"]).status_code == 200
    assert not list((stack.var_dir / "outbox").glob("**/*.json"))  # nothing went to the dev inbox


@pytest.mark.parametrize("forgery", ["no session", "three-year expiry", "dev-only secret"])
def test_a_forged_token_for_a_real_account_is_refused_through_the_gateway(production, forgery):
    stack, env, sms = production
    genuine = sign_in(stack, sms)["access_token"]
    claims = jwt.decode(genuine, env["SFERA_JWT_SECRET"], algorithms=["HS256"], options={"verify_iss": False})
    now = int(time.time())
    key = env["SFERA_JWT_SECRET"]
    if forgery == "no session":
        claims.pop("sid")
    elif forgery == "three-year expiry":
        claims.update(iat=now, exp=now + 3 * 365 * 86400)
    else:
        key = "dev-only-jwt-secret-change-me-in-production"
    response = me(stack, jwt.encode(claims, key, algorithm="HS256"))
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "auth.invalid_token"


def test_password_guessing_is_told_when_to_retry_and_does_not_stop_the_owner_ID_2(production):
    stack, _, sms = production
    base = f"{stack.gateway_url}/api/v1"
    session = sign_in(stack, sms)
    assert requests.put(f"{base}/me/password", json={"new_password": "correct horse battery"}, timeout=15,
                        headers={"Authorization": f"Bearer {session['access_token']}"}).status_code == 204
    phone = me(stack, session["access_token"]).json()["phone"]

    def try_password(password: str, address: str) -> requests.Response:
        return requests.post(f"{base}/auth/password-sign-in", json={"phone": phone, "password": password},
                             headers={"X-Forwarded-For": address}, timeout=15)

    assert [try_password("guess guess", "203.0.113.5").status_code for _ in range(5)] == [401] * 5
    refused = try_password("correct horse battery", "203.0.113.5")
    assert refused.status_code == 429, refused.text
    error = refused.json()["error"]
    assert error["code"] == "sign_in.too_many_attempts"
    assert 0 < error["details"]["retry_after"] <= 30
    assert refused.headers["Retry-After"] == str(error["details"]["retry_after"])
    assert try_password("correct horse battery", "198.51.100.7").status_code == 200  # the owner, elsewhere
