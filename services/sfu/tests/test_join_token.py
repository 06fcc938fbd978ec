"""Join tokens the SFU accepts: only what calls issues, within the configured lifetime (CA-10, issue #12)."""

from __future__ import annotations

import time
import uuid

import jwt
import pytest

from shared.contracts.join_token import TOKEN_AUDIENCE, token_secret, verify_join_token
from shared.errors import Unauthorized

pytestmark = pytest.mark.unit


def signed(**changes) -> str:
    """Signed with the right key: what a leaked secret or a careless tool could mint."""
    now = int(time.time())
    claims = {"aud": TOKEN_AUDIENCE, "sub": str(uuid.uuid4()), "call": str(uuid.uuid4()), "room": "r", "role": "admin",
              "rights": ["subscribe"], "muted": False, "iat": now, "exp": now + 120, **changes}
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, token_secret(), algorithm="HS256")


def test_ca10_a_token_within_the_ttl_passes():
    assert verify_join_token(signed())["role"] == "admin"


@pytest.mark.parametrize("lives, claims", [
    pytest.param(3 * 365 * 86400, {}, id="three-year expiry"),
    pytest.param(600, {}, id="ten minutes against a two-minute TTL"),
    pytest.param(None, {"iat": None}, id="no issue time"),
])
def test_ca10_a_join_token_living_beyond_the_ttl_is_refused(lives, claims):
    # the expiry counted from the moment the token is signed, not from the test's collection (a slow run once
    # reached this test more than ten minutes after collection: the token had expired, not lived too long)
    if lives is not None:
        claims = {"exp": int(time.time()) + lives}
    with pytest.raises(Unauthorized) as info:
        verify_join_token(signed(**claims))
    assert info.value.code == "call.invalid_token"


def test_ca10_the_ttl_is_the_configured_one(monkeypatch):
    monkeypatch.setenv("SFERA_JOIN_TOKEN_TTL", "900")
    now = int(time.time())
    assert verify_join_token(signed(iat=now, exp=now + 600))
