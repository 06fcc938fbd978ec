"""Access tokens: short-lived signed JWTs issued by identity and verified by the
gateway without a call (HS256 with a shared secret from the environment).

Only what identity issues passes, whatever the key: a session id (signing a
session out must be able to end it) and a lifetime within the configured TTL
(a token minted for years is refused even with the right signature)."""

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


def issue_access_token(user_id: uuid.UUID, session_id: str, method: str | None = None) -> AccessToken:
    config = settings()
    now = int(time.time())
    claims = {
        "sub": str(user_id),
        "iss": config.jwt_issuer,
        "iat": now,
        "exp": now + config.access_token_ttl,
        "jti": uuid.uuid4().hex,
        "sid": session_id,
    }
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
            options={"require": ["sub", "exp", "iat", "iss", "sid"]},
        )
        # PyJWT refuses an "iat" in the future, so this also bounds "exp" by now + TTL.
        if claims["exp"] - claims["iat"] > config.access_token_ttl:
            raise jwt.InvalidTokenError("expires beyond the configured lifetime")
        if not isinstance(claims["sid"], str) or not claims["sid"]:
            raise jwt.InvalidTokenError("no session")
        return Principal(uuid.UUID(claims["sub"]), claims["sid"], (claims.get("amr") or [None])[0])
    except jwt.ExpiredSignatureError:
        raise Unauthorized("auth.token_expired", "The access token has expired; refresh it or sign in again.") from None
    except (jwt.InvalidTokenError, ValueError, TypeError):
        raise Unauthorized("auth.invalid_token", "The access token is not valid.") from None
