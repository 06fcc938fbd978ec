"""Schema fuzzing of the running platform from its own /openapi.json (issue #12):
every operation, anonymous and signed in, with path ids that point at real objects
some of the time, and near misses of them other times (half of a real token, then text
outside ASCII). Checks: no 5xx, and every answer is what the document says
(a documented status, its content type, its schema). Bounded: a few examples per
operation and mode, no shrinking."""

from __future__ import annotations

import time

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

EXAMPLES = 6  # per operation and mode (anonymous, signed in)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Not fuzzed: the WebSocket (no HTTP answer to check), and what would end the fuzzing person's own session.
SKIP = {("GET", "/api/v1/realtime"), ("DELETE", "/api/v1/me/sessions")}


@pytest.fixture(scope="module")
def real_ids(api, room):
    """Objects the fuzzer's path parameters point at some of the time (their admin signs in)."""
    admin = room["people"][0]
    token = admin["access_token"]
    org = room["org"]
    classes = api.ok("GET", f"/organizations/{org}/classes", token)
    invite = api.ok("POST", f"/organizations/{org}/invites", token, status=201,
                    json={"role": "student", "class_id": classes[0]["class_id"], "validity": "7d"}) \
        if classes else None
    api.ok("POST", f"/chats/{room['chat_id']}/messages", token, status=201, json={"text": "Привет"})
    call = api.ok("POST", "/calls", token, status=201, json={"chat_id": room["chat_id"]})
    ids = {"organization_id": org, "chat_id": room["chat_id"], "user_id": room["ids"][1], "call_id": call["call_id"],
           "class_id": classes[0]["class_id"] if classes else None, "seq": 1,
           "token": invite["token"] if invite else None, "fmt": "svg"}
    return {k: v for k, v in ids.items() if v is not None}, token


def near_miss(value):
    """A real reference whose second half is text outside ASCII: an invite token so altered made the services'
    comparison raise (a 5xx to anyone) where an altered hex one was "not found"."""
    text = str(value)
    return text[: len(text) // 2] + "é" * (len(text) - len(text) // 2)


def fuzzer(operation, headers: dict, ids: dict, base_url: str, counted: dict, failures: list):
    @settings(max_examples=EXAMPLES, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(), real=st.sampled_from(["generated", "real", "near"]))
    def fuzz(case, real):
        if real != "generated" and case.path_parameters:
            for name in case.path_parameters:
                if name in ids:
                    case.path_parameters[name] = ids[name] if real == "real" else near_miss(ids[name])
        response = case.call(base_url=base_url, headers=headers, timeout=20)
        counted["requests"] += 1
        try:
            case.validate_response(response, checks=CHECKS)
        except FailureGroup as exc:  # the checks that failed, one line each
            failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: "
                            f"{' | '.join(type(e).__name__ for e in exc.exceptions)}: {str(exc)[:300]}")

    return fuzz


def test_fuzz_every_operation_from_the_openapi_document(platform, real_ids):
    ids, token = real_ids
    schema = schemathesis.openapi.from_url(f"{platform.gateway_url}/openapi.json")
    failures: list[str] = []
    counted = {"requests": 0, "operations": 0}
    started = time.monotonic()
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in SKIP:
            continue
        counted["operations"] += 1
        for signed_in in (False, True):
            headers = {"Authorization": f"Bearer {token}"} if signed_in else {}
            fuzzer(operation, headers, ids, platform.gateway_url, counted, failures)()
    took = time.monotonic() - started
    print(f"\nfuzzed {counted['requests']} requests over {counted['operations']} operations in {took:.0f} s; "
          f"{len(failures)} failures")
    assert counted["operations"] >= 60 and counted["requests"] >= counted["operations"] * 4
    assert not failures, "\n".join(sorted(set(failures))[:40])


def test_the_fuzzer_finds_a_server_error_when_there_is_one(platform):
    """The check is live: an answer that is a 5xx fails it."""
    schema = schemathesis.openapi.from_url(f"{platform.gateway_url}/openapi.json")
    operation = schema["/api/v1/me"]["GET"]
    case = operation.Case()
    response = case.call(base_url=platform.gateway_url, headers={"Authorization": "Bearer x"})
    response.status_code = 500
    with pytest.raises(FailureGroup):
        case.validate_response(response, checks=[not_a_server_error])
