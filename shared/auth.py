"""Access tokens: short-lived signed JWTs issued by identity and verified by the
gateway without a call (HS256 with a shared secret from the environment)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import jwt

from shared.config import settings
from shared.errors import Unauthorized

ALGORITHM = "HS256"


@dataclass(frozen=True)
class AccessToken:
    token: str
    expires_in: int


@dataclass(frozen=True)
class Principal:
    user_id: uuid.UUID
    session_id: str | None
    method: str | None  # how the session was opened: "code" or "password"


def issue_access_token(user_id: uuid.UUID, session_id: str | None = None, method: str | None = None) -> AccessToken:
    config = settings()
    now = int(time.time())
    claims = {
        "sub": str(user_id),
        "iss": config.jwt_issuer,
        "iat": now,
        "exp": now + config.access_token_ttl,
        "jti": uuid.uuid4().hex,
    }
    if session_id:
        claims["sid"] = session_id
    if method:
        claims["amr"] = [method]
    return AccessToken(jwt.encode(claims, config.jwt_secret, algorithm=ALGORITHM), config.access_token_ttl)


def verify_access_token(token: str) -> Principal:
    config = settings()
    try:
        claims = jwt.decode(
            token,
            config.jwt_secret,
            algorithms=[ALGORITHM],
            issuer=config.jwt_issuer,
            options={"require": ["sub", "exp", "iat", "iss"]},
        )
        return Principal(uuid.UUID(claims["sub"]), claims.get("sid"), (claims.get("amr") or [None])[0])
    except jwt.ExpiredSignatureError:
        raise Unauthorized("auth.token_expired", "The access token has expired; refresh it or sign in again.") from None
    except (jwt.InvalidTokenError, ValueError):
        raise Unauthorized("auth.invalid_token", "The access token is not valid.") from None
