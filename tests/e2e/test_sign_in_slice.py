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

from shared.errors import NotFound
from shared.platform import SERVICES
from tests.helpers import eventually, metric

pytestmark = pytest.mark.e2e


def test_sign_in_through_the_gateway_reaches_school(platform, api):
    issued = api.request_code("8 (912) 345-67-89")
    assert issued["sent_to"] == "+79123456789" and issued["resend_after"] > 0
    assert "code" not in issued  # the code never comes back (ID-9)
    code = api.inbox_code("sms", "+79123456789")
    session = api.ok("POST", f"/auth/sign-in-codes/{issued['challenge_id']}/confirmation", json={"code": code})
    assert session["new_account"] is True and session["token_type"] == "Bearer"
    assert session["profile_complete"] is False

    me = api.ok("GET", "/me", session["access_token"])
    assert me["user_id"] == session["user_id"] and me["phone"] == "+79123456789"

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


def test_every_process_serves_health_and_metrics(platform):
    names = [*SERVICES, *(f"{s}-relay" for s in SERVICES)]
    for name in names:
        port = platform.metrics_port(name)
        health = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json()
        assert health["status"] == "ok", (name, health)
        assert set(health["checks"]) >= {"broker", "store"}, name
        assert requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).status_code == 200
        assert_gc_measured(f"http://127.0.0.1:{port}/metrics", name)
    gateway = requests.get(f"{platform.gateway_url}/healthz", timeout=5).json()
    assert gateway["status"] == "ok"
    assert "sfera_http_request_duration_seconds" in requests.get(f"{platform.gateway_url}/metrics", timeout=5).text
    assert_gc_measured(f"{platform.gateway_url}/metrics", "gateway")
    assert_gc_measured(f"{platform.gateway_url}/_realtime/metrics", "realtime")
    assert_gc_measured(f"http://127.0.0.1:{platform.config.sfu_port}/metrics", "sfu")


def assert_gc_measured(url: str, process: str) -> None:
    """The process's garbage collections are on its /metrics under its own name (shared/observability/gc.py),
    young ones counted already (a process allocates as it starts)."""
    assert metric(url, "sfera_gc_pause_seconds_count", process=process, generation="0") >= 1, (url, process)


def test_the_request_id_reaches_the_service_logs(platform, api):
    request_id = f"e2e-{uuid.uuid4().hex[:12]}"
    api.call("POST", "/auth/sign-in-codes", json={"phone": api.new_phone()}, headers={"X-Request-Id": request_id})
    log = platform.log_dir / "identity.log"

    def logged():
        for line in log.read_text().splitlines():
            if line.startswith("{") and json.loads(line).get("request_id") == request_id:
                return True
        return False

    eventually(logged, timeout=10, what="a JSON log line of identity carrying the request id")
