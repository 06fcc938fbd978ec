"""Access tokens: short-lived signed JWTs issued by identity and verified by the
gateway without a call (HS256 with a shared secret from the environment).

Only what identity issues passes, whatever the key: a session id (signing a
session out must be able to end it) and a lifetime within the configured TTL
(a token minted for years is refused even with the right signature)."""

from __future__ import annotations

import os
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


VERIFIED_MAX = 4096  # tokens a process remembers as verified (the newest)
# What a verification reads of the environment (settings()): a token is remembered with these, and verified
# again when any of them changes.
_TOKEN_ENV = ("SFERA_JWT_SECRET", "SFERA_JWT_ISSUER", "SFERA_ACCESS_TOKEN_TTL")
_verified: dict[tuple, tuple[Principal, float]] = {}


def verify_access_token(token: str) -> Principal:
    """The principal of a valid access token (Unauthorized otherwise). The gateway verifies every request's token,
    and a client sends the same one for its whole life: a token that verified is remembered (with the settings it
    verified under) and its principal answered until its ``exp`` passes, checked every time, without the signature
    and claims again (``settings()`` and PyJWT: 80-110 µs a request of the gateway's 2-3 ms of CPU a chat post).
    The same string under the same secret, issuer and TTL verifies the same: nothing else in a token can change."""
    key = (token, *map(os.environ.get, _TOKEN_ENV))
    known = _verified.get(key)
    if known is not None:
        if time.time() < known[1]:
            return known[0]
        _verified.pop(key, None)
        raise _expired()
    principal, expires = _verify(token)
    while len(_verified) >= VERIFIED_MAX:  # the oldest goes (dicts keep their order of insertion)
        try:
            _verified.pop(next(iter(_verified)), None)
        except (StopIteration, RuntimeError):  # emptied or changed by another thread meanwhile
            break
    _verified[key] = (principal, expires)
    return principal


def _expired() -> Unauthorized:
    return Unauthorized("auth.token_expired", "The access token has expired; refresh it or sign in again.")


def _verify(token: str) -> tuple[Principal, float]:
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
        return Principal(uuid.UUID(claims["sub"]), claims["sid"], (claims.get("amr") or [None])[0]), claims["exp"]
    except jwt.ExpiredSignatureError:
        raise _expired() from None
    except (jwt.InvalidTokenError, ValueError, TypeError):
        raise Unauthorized("auth.invalid_token", "The access token is not valid.") from None
