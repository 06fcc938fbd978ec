"""Access tokens: only what identity issues passes (a session id, a lifetime within the configured TTL)."""

import time
import uuid

import jwt
import pytest

from shared import auth
from shared.auth import issue_access_token, verify_access_token
from shared.config import settings
from shared.errors import Unauthorized

pytestmark = pytest.mark.unit


def forged(**changes) -> str:
    """A token signed with the right key but not issued by identity (the review's forgery, issue #12)."""
    config = settings()
    now = int(time.time())
    claims = {"sub": str(uuid.uuid4()), "iss": config.jwt_issuer, "iat": now, "exp": now + config.access_token_ttl,
              "sid": uuid.uuid4().hex, "jti": uuid.uuid4().hex, **changes}
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, config.jwt_secret, algorithm="HS256")


def test_an_issued_token_carries_its_session():
    user_id = uuid.uuid4()
    principal = verify_access_token(issue_access_token(user_id, "session-1", "password").token)
    assert (principal.user_id, principal.session_id, principal.method) == (user_id, "session-1", "password")


def test_a_well_formed_token_passes():
    verify_access_token(forged())


def test_a_token_without_a_session_is_refused():
    with pytest.raises(Unauthorized) as info:
        verify_access_token(forged(sid=None))
    assert info.value.code == "auth.invalid_token"


def test_a_token_with_an_empty_session_is_refused():
    with pytest.raises(Unauthorized) as info:
        verify_access_token(forged(sid=""))
    assert info.value.code == "auth.invalid_token"


@pytest.mark.parametrize("claims", [
    pytest.param({"exp": int(time.time()) + 3 * 365 * 86400}, id="three-year expiry"),
    pytest.param({"exp": int(time.time()) + 3 * 365 * 86400, "iat": int(time.time()) + 3 * 365 * 86400 - 900},
                 id="issued in the future"),
    pytest.param({"exp": int(time.time()) + 3600, "iat": int(time.time()) - 3600 + 1000}, id="lifetime over TTL"),
])
def test_a_token_living_beyond_the_configured_ttl_is_refused(claims):
    with pytest.raises(Unauthorized) as info:
        verify_access_token(forged(**claims))
    assert info.value.code == "auth.invalid_token"


def test_a_token_without_issue_time_is_refused():
    with pytest.raises(Unauthorized):
        verify_access_token(forged(iat=None))


def test_a_shorter_configured_ttl_refuses_tokens_issued_for_longer(monkeypatch):
    token = forged()
    monkeypatch.setenv("SFERA_ACCESS_TOKEN_TTL", "60")
    with pytest.raises(Unauthorized):
        verify_access_token(token)


def test_a_verified_token_is_not_verified_again_while_it_lives(monkeypatch):
    """The gateway verifies every request's token: a client's same token is checked once (issue #17, its CPU)."""
    token = issue_access_token(uuid.uuid4(), "session-1").token
    decoded = []
    decode = jwt.decode
    monkeypatch.setattr(jwt, "decode", lambda *args, **kwargs: decoded.append(1) or decode(*args, **kwargs))
    first, again = verify_access_token(token), verify_access_token(token)
    assert first == again and len(decoded) == 1


def test_a_remembered_token_is_refused_once_its_expiry_passes(monkeypatch):
    token = issue_access_token(uuid.uuid4(), "session-1").token
    verify_access_token(token)
    expires = jwt.decode(token, options={"verify_signature": False})["exp"]
    monkeypatch.setattr(auth.time, "time", lambda: expires)  # the token's last second is over
    with pytest.raises(Unauthorized) as info:
        verify_access_token(token)
    assert info.value.code == "auth.token_expired"


@pytest.mark.parametrize("name, value", [("SFERA_JWT_SECRET", "another secret of at least thirty-two bytes"),
                                         ("SFERA_JWT_ISSUER", "someone-else")])
def test_a_remembered_token_is_verified_again_under_another_secret_or_issuer(monkeypatch, name, value):
    token = issue_access_token(uuid.uuid4(), "session-1").token
    verify_access_token(token)
    monkeypatch.setenv(name, value)
    with pytest.raises(Unauthorized) as info:
        verify_access_token(token)
    assert info.value.code == "auth.invalid_token"


def test_a_refused_token_is_not_remembered():
    token = forged(sid=None)
    for _ in range(2):
        with pytest.raises(Unauthorized):
            verify_access_token(token)


def test_the_tokens_remembered_are_bounded(monkeypatch):
    monkeypatch.setattr(auth, "VERIFIED_MAX", 3)
    monkeypatch.setattr(auth, "_verified", {})
    tokens = [issue_access_token(uuid.uuid4(), "session-1").token for _ in range(5)]
    for token in tokens:
        verify_access_token(token)
    assert len(auth._verified) == 3 and [key[0] for key in auth._verified] == tokens[2:]
