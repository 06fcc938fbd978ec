"""The gateway's own behaviour with services replaced by a fake RPC pool: error
shape, validation, authentication, request ids, CORS, OpenAPI."""

import uuid

import pytest
from nameko.exceptions import RemoteError, RpcTimeout

from shared.auth import issue_access_token
from shared.errors import Forbidden, Invalid

from .conftest import bearer

pytestmark = pytest.mark.unit


def assert_error(response, status, code):
    assert response.status_code == status, response.get_json()
    body = response.get_json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)
    assert body["error"]["request_id"] == response.headers["X-Request-Id"]


def test_request_code_calls_identity_and_returns_201(client, rpc):
    challenge_id = uuid.uuid4()
    rpc.answers[("identity", "request_sign_in_code")] = {
        "challenge_id": str(challenge_id), "channel": "sms", "phone": "+79001234567",
        "resend_after": 60, "expires_in": 300}
    response = client.post("/api/v1/auth/sign-in-codes", json={"phone": "+7 900 123-45-67"},
                           headers={"X-Request-Id": "abc-123"})
    assert response.status_code == 201
    assert response.get_json()["resend_after"] == 60
    assert response.headers["X-Request-Id"] == "abc-123"
    assert rpc.calls == [("identity", "request_sign_in_code", "abc-123",
                          {"phone": "+7 900 123-45-67", "channel": "sms", "client": "127.0.0.1"})]


def test_invalid_body_is_a_400_with_field_details_and_no_call(client, rpc):
    response = client.post("/api/v1/auth/sign-in-codes", json={"phone": 7})
    assert_error(response, 400, "request.invalid")
    assert "phone" in response.get_json()["error"]["details"]["fields"]
    response = client.post("/api/v1/auth/sign-in-codes", data="phone=1", content_type="text/plain")
    assert_error(response, 400, "request.not_json")
    assert rpc.calls == []


def test_typed_service_errors_keep_their_code(client, rpc):
    rpc.answers[("identity", "request_sign_in_code")] = Invalid("phone.invalid", "Not a phone.", {"phone": "12x"})
    response = client.post("/api/v1/auth/sign-in-codes", json={"phone": "12x"})
    assert_error(response, 400, "phone.invalid")
    assert response.get_json()["error"]["details"] == {"phone": "12x"}


def test_a_path_that_is_not_a_uuid_is_404_not_500(client):
    response = client.post("/api/v1/auth/sign-in-codes/nope/confirmation", json={"code": "123456"})
    assert_error(response, 404, "route.not_found")


@pytest.mark.parametrize("failure, status, code", [
    (RpcTimeout(10), 503, "service.unavailable"),
    (ConnectionError("broker gone"), 503, "service.unavailable"),
    (RemoteError("KeyError", "boom"), 502, "service.failed"),
])
def test_service_failures_map_to_stable_codes_never_a_bare_500(client, rpc, failure, status, code):
    rpc.answers[("identity", "request_sign_in_code")] = failure
    response = client.post("/api/v1/auth/sign-in-codes", json={"phone": "+79001234567"})
    assert_error(response, status, code)


def test_me_needs_a_bearer_token(client):
    assert_error(client.get("/api/v1/me"), 401, "auth.required")
    assert_error(client.get("/api/v1/me", headers={"Authorization": "Bearer nonsense"}), 401, "auth.invalid_token")


def test_an_expired_token_is_refused(client, monkeypatch):
    monkeypatch.setenv("SFERA_ACCESS_TOKEN_TTL", "-1")
    token = issue_access_token(uuid.uuid4(), "s-1").token
    assert_error(client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}), 401, "auth.token_expired")


def test_me_passes_the_verified_user_to_identity(client, rpc):
    user_id = uuid.uuid4()
    rpc.answers[("identity", "get_person")] = lambda actor_id, user_id: {
        "user_id": user_id, "relation": "self", "registered_via": "phone", "phone": "+79001234567"}
    response = client.get("/api/v1/me", headers=bearer(user_id))
    assert response.status_code == 200
    assert rpc.calls[0][3] == {"actor_id": str(user_id), "user_id": str(user_id)}


def test_forbidden_is_403(client, rpc):
    rpc.answers[("identity", "get_person")] = Forbidden("account.forbidden", "No.")
    assert_error(client.get("/api/v1/me", headers=bearer()), 403, "account.forbidden")


def test_no_content_answers_are_204(client, rpc):
    rpc.answers[("identity", "sign_out")] = None
    response = client.delete(f"/api/v1/me/sessions/{uuid.uuid4()}", headers=bearer())
    assert response.status_code == 204 and response.data == b""


def test_sign_out_everywhere_can_keep_the_current_session(client, rpc):
    rpc.answers[("identity", "sign_out_everywhere")] = {"signed_out": 2}
    response = client.delete("/api/v1/me/sessions?keep=current", headers=bearer(session_id="s-42"))
    assert response.get_json() == {"signed_out": 2}
    assert rpc.calls[0][3]["keep_session_id"] == "s-42"


@pytest.mark.parametrize("fmt, media_type, magic", [("svg", "image/svg+xml", b"<?xml"), ("png", "image/png",
                                                                                          b"\x89PNG")])
def test_the_parent_link_as_a_qr_code_PL_2(client, rpc, fmt, media_type, magic):
    rpc.answers[("identity", "parent_invite")] = {"token": "t" * 64, "expires_at": "2026-09-08T08:00:00+00:00"}
    response = client.get(f"/api/v1/me/parent-invite/qr.{fmt}", headers=bearer())
    assert response.status_code == 200 and response.mimetype == media_type
    assert response.data.startswith(magic)
    # One address for every pupil: a browser kept one pupil's code (their live token) for the next on that
    # computer, and the old code after a new link (an outside audit): kept by nobody
    assert response.headers["Cache-Control"] == "no-store"
    assert_error(client.get("/api/v1/me/parent-invite/qr.gif", headers=bearer()), 400, "qr.unknown_format")


def test_the_child_or_whoever_manages_its_links_revokes_the_parent_link_PL_2(client, rpc):
    child, parent = uuid.uuid4(), uuid.uuid4()
    rpc.answers[("identity", "revoke_parent_invite")] = None
    response = client.delete("/api/v1/me/parent-invite", headers=bearer(child))
    assert response.status_code == 204 and response.data == b""
    response = client.delete(f"/api/v1/children/{child}/parent-invite", headers=bearer(parent))
    assert response.status_code == 204
    assert [(c[0], c[1], c[3]) for c in rpc.calls] == [
        ("identity", "revoke_parent_invite", {"actor_id": str(child), "child_id": str(child)}),
        ("identity", "revoke_parent_invite", {"actor_id": str(parent), "child_id": str(child)})]
    rpc.answers[("identity", "revoke_parent_invite")] = Forbidden("parent_link.revoke_forbidden", "Not yours.")
    assert_error(client.delete(f"/api/v1/children/{child}/parent-invite", headers=bearer()), 403,
                 "parent_link.revoke_forbidden")
    assert_error(client.delete("/api/v1/me/parent-invite"), 401, "auth.required")


@pytest.mark.parametrize("path", ["/api/v1/me/parent-invite/qr.gif", "/api/v1/invites/abc/qr.gif",
                                  "/api/v1/chat-invites/abc/qr.gif"])
def test_a_qr_code_of_an_unknown_format_is_refused_before_a_service_is_asked(client, rpc, path):
    assert_error(client.get(path, headers=bearer()), 400, "qr.unknown_format")
    assert rpc.calls == []


def test_passwords_are_never_echoed_ID_9(client, rpc):
    rpc.answers[("identity", "set_password")] = Invalid("password.too_weak", "Too weak.")
    response = client.put("/api/v1/me/password", json={"new_password": "hunter2"}, headers=bearer())
    assert b"hunter2" not in response.data


def test_cors_preflight_for_an_allowed_origin(client, monkeypatch):
    response = client.options("/api/v1/me", headers={
        "Origin": "http://localhost:5173", "Access-Control-Request-Method": "GET"})
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "http://localhost:5173"
    assert "Authorization" in response.headers["Access-Control-Allow-Headers"]
    other = client.options("/api/v1/me", headers={"Origin": "http://evil.example",
                                                  "Access-Control-Request-Method": "GET"})
    assert "Access-Control-Allow-Origin" not in other.headers


def test_openapi_document_describes_every_api_route(client):
    spec = client.get("/openapi.json").get_json()
    assert spec["openapi"] == "3.0.3"
    paths = spec["paths"]
    app_rules = {rule.rule for rule in client.application.url_map.iter_rules() if rule.rule.startswith("/api/v1")}
    assert len(paths) == len(app_rules) >= 20
    operation_ids = [op["operationId"] for path in paths.values() for op in path.values()]
    assert len(operation_ids) == len(set(operation_ids))
    confirm = paths["/api/v1/auth/sign-in-codes/{challenge_id}/confirmation"]["post"]
    assert confirm["parameters"][0]["schema"] == {"type": "string", "format": "uuid"}
    assert confirm["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CodeConfirmation"}
    assert paths["/api/v1/me"]["get"]["security"] == [{"bearer": []}]
    assert {"ErrorResponse", "SignedIn", "SignInCodeIssued", "PersonView"} <= set(spec["components"]["schemas"])
    assert paths["/api/v1/me/children"]["get"]["responses"]["200"]["content"]["application/json"]["schema"] == {
        "type": "array", "items": {"$ref": "#/components/schemas/PersonView"}}
    password = spec["components"]["schemas"]["PasswordSignIn"]["properties"]["password"]
    assert password.get("writeOnly") is True


def test_docs_page_and_its_assets_are_served_locally(client):
    page = client.get("/docs")
    assert page.status_code == 200 and b"swagger-ui-bundle.js" in page.data
    assert client.get("/docs/static/swagger-ui-bundle.js").status_code == 200


def test_metrics_are_exposed(client, rpc):
    rpc.answers[("identity", "request_sign_in_code")] = Invalid("phone.invalid", "x")
    client.post("/api/v1/auth/sign-in-codes", json={"phone": "123"})
    text = client.get("/metrics").data.decode()
    assert 'sfera_http_request_duration_seconds_count{method="POST",route="/api/v1/auth/sign-in-codes",status="400"}' \
        in text
