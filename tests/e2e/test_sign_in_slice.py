"""The thin vertical slice through the whole platform, on real RabbitMQ and
PostgreSQL: a person asks for a sign-in code through the gateway, reads it from
the dev inbox, confirms it; identity registers the account, and
``UserRegistered`` travels through the outbox and RabbitMQ to school."""

from __future__ import annotations

import json
import uuid

import pytest
import requests
from nameko.standalone.rpc import ClusterRpcProxy

import shared.errors  # noqa: F401  (typed errors arrive as themselves)
from shared.errors import NotFound
from shared.platform import SERVICES
from tests.helpers import eventually, metric

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def platform(tmp_path_factory, rabbitmq, postgres):
    """One running platform (all services, relays, gateway) for the slice's tests."""
    from conftest import new_stack

    stack = new_stack(tmp_path_factory.mktemp("platform"), rabbitmq, postgres, "postgres")
    try:
        stack.prepare()
        stack.start_all()
        yield stack
    finally:
        stack.stop()


def read_code(stack, phone: str) -> str:
    inbox = stack.var_dir / "outbox" / "sms"

    def newest():
        files = sorted(inbox.glob(f"*-{phone.lstrip('+')}-*.json")) if inbox.exists() else []
        return files[-1] if files else None

    return json.loads(eventually(newest, what="the SMS in the dev inbox").read_text())["code"]


def test_sign_in_through_the_gateway_reaches_school(platform):
    api = f"{platform.gateway_url}/api/v1"
    issued = requests.post(f"{api}/auth/sign-in-codes", json={"phone": "8 (912) 345-67-89"}, timeout=10)
    assert issued.status_code == 201, issued.text
    body = issued.json()
    assert body["phone"] == "+79123456789" and body["resend_after"] > 0
    assert "code" not in body  # the code never comes back (ID-9)

    code = read_code(platform, "+79123456789")
    signed_in = requests.post(f"{api}/auth/sign-in-codes/{body['challenge_id']}/confirmation",
                              json={"code": code}, timeout=10)
    assert signed_in.status_code == 200, signed_in.text
    session = signed_in.json()
    assert session["new_account"] is True and session["token_type"] == "Bearer"

    me = requests.get(f"{api}/me", headers={"Authorization": f"Bearer {session['access_token']}"}, timeout=10)
    assert me.status_code == 200
    assert me.json()["user_id"] == session["user_id"]

    with ClusterRpcProxy({"AMQP_URI": platform.amqp_uri}, timeout=10) as rpc:
        def school_knows():
            try:
                return rpc.school.get_person(session["user_id"])
            except NotFound:
                return None

        person = eventually(school_knows, timeout=20, what="school to record the new user")
    assert person["version"] == 1 and person["registered_via"] == "phone"

    school_metrics = f"http://127.0.0.1:{platform.metrics_port('school')}/metrics"
    assert metric(school_metrics, "sfera_events_consumed_total", outcome="applied") >= 1
    relay_metrics = f"http://127.0.0.1:{platform.metrics_port('identity-relay')}/metrics"
    assert metric(relay_metrics, "sfera_events_published_total", type="identity.UserRegistered.v1") >= 1


def test_signing_in_again_finds_the_same_account(platform):
    api = f"{platform.gateway_url}/api/v1"
    ids = []
    for _ in range(2):
        challenge = requests.post(f"{api}/auth/sign-in-codes", json={"phone": "+7 912 000-00-01"}, timeout=10).json()
        code = read_code(platform, "+79120000001")
        ids.append(requests.post(f"{api}/auth/sign-in-codes/{challenge['challenge_id']}/confirmation",
                                 json={"code": code}, timeout=10).json()["user_id"])
    assert ids[0] == ids[1]


def test_refusals_have_stable_codes(platform):
    api = f"{platform.gateway_url}/api/v1"
    bad_phone = requests.post(f"{api}/auth/sign-in-codes", json={"phone": "+7 000"}, timeout=10)
    assert (bad_phone.status_code, bad_phone.json()["error"]["code"]) == (400, "phone.invalid")
    unknown = requests.post(f"{api}/auth/sign-in-codes/{uuid.uuid4()}/confirmation", json={"code": "123456"},
                            timeout=10)
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "sign_in.not_found")
    challenge = requests.post(f"{api}/auth/sign-in-codes", json={"phone": "+79120000002"}, timeout=10).json()
    real = read_code(platform, "+79120000002")
    wrong = requests.post(f"{api}/auth/sign-in-codes/{challenge['challenge_id']}/confirmation",
                          json={"code": "000000" if real != "000000" else "111111"}, timeout=10)
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (400, "sign_in.wrong_code")
    assert wrong.json()["error"]["request_id"] == wrong.headers["X-Request-Id"]


def test_every_process_serves_health_and_metrics(platform):
    names = [*SERVICES, *(f"{s}-relay" for s in SERVICES)]
    for name in names:
        port = platform.metrics_port(name)
        health = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json()
        assert health["status"] == "ok", (name, health)
        assert set(health["checks"]) >= {"broker", "store"}, name
        assert requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).status_code == 200
    gateway = requests.get(f"{platform.gateway_url}/healthz", timeout=5).json()
    assert gateway["status"] == "ok"
    assert "sfera_http_request_duration_seconds" in requests.get(f"{platform.gateway_url}/metrics", timeout=5).text


def test_the_request_id_reaches_the_service_logs(platform):
    request_id = f"e2e-{uuid.uuid4().hex[:12]}"
    requests.post(f"{platform.gateway_url}/api/v1/auth/sign-in-codes", json={"phone": "+79120000003"},
                  headers={"X-Request-Id": request_id}, timeout=10)
    log = platform.log_dir / "identity.log"

    def logged():
        for line in log.read_text().splitlines():
            if line.startswith("{") and json.loads(line).get("request_id") == request_id:
                return True
        return False

    eventually(logged, timeout=10, what="a JSON log line of identity carrying the request id")
