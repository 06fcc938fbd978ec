"""The browser's refresh token in an httpOnly cookie (issue #14, ID-8): set on sign-in and refresh for a
client that asks for it, never in the JSON it can read, sent only to the refresh path, refused without
the custom header or from another site, cleared on sign-out; the JSON refresh_token flow unchanged."""

import uuid

import pytest

from shared.auth import issue_access_token

from .conftest import FakeRpc

pytestmark = pytest.mark.unit

COOKIE_CLIENT = {"X-Sfera-Session": "cookie"}


def signed_in(refresh: str = "r-1") -> dict:
    return {"access_token": "a-1", "token_type": "Bearer", "expires_in": 900, "refresh_token": refresh,
            "session_id": str(uuid.uuid4()), "user_id": str(uuid.uuid4()), "new_account": False,
            "profile_complete": True}


@pytest.fixture
def rpc():
    rpc = FakeRpc()
    rpc.answers[("identity", "sign_in_with_password")] = signed_in("r-1")
    rpc.answers[("identity", "refresh")] = lambda refresh_token: {**signed_in(f"{refresh_token}+1")}
    return rpc


def refresh_cookie(response) -> str:
    cookies = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("sfera_refresh=")]
    assert len(cookies) == 1, response.headers.getlist("Set-Cookie")
    return cookies[0]


def sign_in(client, **kwargs):
    return client.post("/api/v1/auth/password-sign-in", json={"phone": "+79001234567", "password": "x"}, **kwargs)


def test_a_cookie_client_gets_its_refresh_token_as_an_httponly_strict_cookie_of_the_refresh_path(client):
    response = sign_in(client, headers=COOKIE_CLIENT)
    assert response.status_code == 200
    assert "refresh_token" not in response.get_json()  # the page's script never sees it
    assert response.get_json()["access_token"] == "a-1"
    cookie = refresh_cookie(response)
    attributes = {part.strip().split("=")[0].lower(): part.strip() for part in cookie.split(";")}
    assert cookie.startswith("sfera_refresh=r-1;")
    assert "httponly" in attributes and attributes["samesite"] == "SameSite=Strict"
    assert attributes["path"] == "Path=/api/v1/auth/refresh"
    assert attributes["max-age"] == f"Max-Age={30 * 24 * 3600}"
    assert "secure" not in attributes  # plain http on a developer's machine
    assert response.headers["Cache-Control"] == "no-store"


def test_the_cookie_is_secure_over_https_and_in_production(client, monkeypatch):
    assert "Secure" in refresh_cookie(sign_in(client, headers=COOKIE_CLIENT, base_url="https://sfera.example"))
    monkeypatch.setenv("SFERA_PUBLIC_URL", "https://sfera.example")
    assert "Secure" in refresh_cookie(sign_in(client, headers=COOKIE_CLIENT))


def test_clients_without_the_header_keep_the_json_flow_and_get_no_cookie(client, rpc):
    response = sign_in(client)
    assert response.get_json()["refresh_token"] == "r-1"
    assert not response.headers.getlist("Set-Cookie")
    response = client.post("/api/v1/auth/refresh", json={"refresh_token": "r-1"})
    assert response.status_code == 200 and response.get_json()["refresh_token"] == "r-1+1"
    assert rpc.calls[-1][3] == {"refresh_token": "r-1"}


def test_a_refresh_by_cookie_rotates_it(client, rpc):
    sign_in(client, headers=COOKIE_CLIENT)
    response = client.post("/api/v1/auth/refresh", json={}, headers={**COOKIE_CLIENT, "Origin": "http://localhost"})
    assert response.status_code == 200, response.get_json()
    assert rpc.calls[-1][3] == {"refresh_token": "r-1"}
    assert "refresh_token" not in response.get_json()
    assert refresh_cookie(response).startswith("sfera_refresh=r-1+1;")


def test_a_refresh_by_cookie_without_the_header_or_from_another_site_is_refused_CSRF(client, rpc):
    sign_in(client, headers=COOKIE_CLIENT)
    calls = len(rpc.calls)
    # A cross-site form can send the cookie but no custom header.
    response = client.post("/api/v1/auth/refresh", json={})
    assert response.status_code == 403 and response.get_json()["error"]["code"] == "auth.refresh_header_required"
    response = client.post("/api/v1/auth/refresh", json={}, headers={**COOKIE_CLIENT, "Origin": "https://evil.example"})
    assert response.status_code == 403 and response.get_json()["error"]["code"] == "auth.origin_refused"
    assert response.get_json()["error"]["message"]
    assert len(rpc.calls) == calls  # identity never saw the token


def test_no_cookie_and_no_token_is_an_ended_session(client):
    response = client.post("/api/v1/auth/refresh", json={}, headers=COOKIE_CLIENT)
    assert response.status_code == 401 and response.get_json()["error"]["code"] == "auth.invalid_refresh"
    response = client.post("/api/v1/auth/refresh", json={})
    assert response.status_code == 401 and response.get_json()["error"]["code"] == "auth.invalid_refresh"


def test_signing_this_device_out_clears_the_cookie_signing_out_another_does_not(client, rpc):
    rpc.answers[("identity", "sign_out")] = None
    rpc.answers[("identity", "sign_out_everywhere")] = {"signed_out": 2}
    user, session = uuid.uuid4(), str(uuid.uuid4())
    auth = {"Authorization": f"Bearer {issue_access_token(user, session).token}"}
    other = client.delete(f"/api/v1/me/sessions/{uuid.uuid4()}", headers=auth)
    assert other.status_code == 204 and not other.headers.getlist("Set-Cookie")
    mine = client.delete(f"/api/v1/me/sessions/{session}", headers=auth)
    assert mine.status_code == 204
    cleared = refresh_cookie(mine)
    assert cleared.startswith("sfera_refresh=;") and "Max-Age=0" in cleared and "Path=/api/v1/auth/refresh" in cleared
    everywhere = client.delete("/api/v1/me/sessions", headers=auth)
    assert everywhere.get_json() == {"signed_out": 2} and "Max-Age=0" in refresh_cookie(everywhere)
    kept = client.delete("/api/v1/me/sessions?keep=current", headers=auth)
    assert not kept.headers.getlist("Set-Cookie")


def test_a_cookie_client_upgrading_from_a_body_token_gets_it_moved_into_the_cookie(client, rpc):
    """A browser that kept its token where scripts could read it (before the cookie) spends it once."""
    response = client.post("/api/v1/auth/refresh", json={"refresh_token": "old"},
                           headers={**COOKIE_CLIENT, "Origin": "http://localhost"})
    assert response.status_code == 200 and "refresh_token" not in response.get_json()
    assert rpc.calls[-1][3] == {"refresh_token": "old"}
    assert refresh_cookie(response).startswith("sfera_refresh=old+1;")


def test_a_refresh_identity_refuses_as_a_session_over_clears_the_cookie(client, rpc):
    """A browser whose session ended elsewhere (signed out everywhere, expired, a reused token) stops presenting
    the dead token: the refusal removes the cookie. Other refusals (a busy identity) leave it."""
    from shared.errors import Unauthorized, Unavailable

    sign_in(client, headers=COOKIE_CLIENT)
    browser = {**COOKIE_CLIENT, "Origin": "http://localhost"}
    rpc.answers[("identity", "refresh")] = Unavailable("request.busy", "Busy, try again.")
    response = client.post("/api/v1/auth/refresh", json={}, headers=browser)
    assert response.status_code == 503 and not response.headers.getlist("Set-Cookie")
    rpc.answers[("identity", "refresh")] = Unauthorized("auth.session_revoked", "This session was signed out.")
    response = client.post("/api/v1/auth/refresh", json={}, headers=browser)
    assert response.status_code == 401 and response.get_json()["error"]["code"] == "auth.session_revoked"
    cookie = refresh_cookie(response)
    assert cookie.startswith("sfera_refresh=;") and "Path=/api/v1/auth/refresh" in cookie
    # A client of the JSON flow sets no cookie and is refused as before.
    response = client.post("/api/v1/auth/refresh", json={"refresh_token": "r-9"})
    assert response.status_code == 401 and not response.headers.getlist("Set-Cookie")
