"""Join tokens (CA-10): the contract between calls, which issues them, and the SFU, which checks them.

A short-lived HS256 JWT signed with ``SFERA_SFU_TOKEN_SECRET`` (shared by both) that says who joins which room
with which rights. Both sides import this module and nothing of each other: the SFU knows no aggregate of calls.
"""

from __future__ import annotations

import jwt

from shared.config import env_int, settings
from shared.errors import Unauthorized

TOKEN_AUDIENCE = "sfera-sfu"
TOKEN_ALGORITHM = "HS256"
REQUIRED_CLAIMS = ["sub", "call", "room", "rights", "exp", "iat"]


def join_token_ttl() -> int:
    return env_int("SFERA_JOIN_TOKEN_TTL", 120)


def token_secret() -> str:
    return settings().sfu_token_secret


def sign_join_token(claims: dict) -> str:
    """The token of these claims (``aud`` is added); the issuer sets ``iat`` and ``exp`` within the TTL."""
    return jwt.encode({**claims, "aud": TOKEN_AUDIENCE}, token_secret(), algorithm=TOKEN_ALGORITHM)


def verify_join_token(token: str) -> dict:
    """The SFU's check: signature, audience, expiry, and a lifetime within the configured TTL
    (a token minted for longer is refused whatever its signature). Raises ``Unauthorized`` with a stable code."""
    try:
        claims = jwt.decode(token, token_secret(), algorithms=[TOKEN_ALGORITHM], audience=TOKEN_AUDIENCE,
                            options={"require": REQUIRED_CLAIMS})
        # PyJWT refuses an "iat" in the future, so this also bounds "exp" by now + TTL.
        if claims["exp"] - claims["iat"] > join_token_ttl():
            raise jwt.InvalidTokenError("expires beyond the configured lifetime")
        return claims
    except jwt.ExpiredSignatureError:
        raise Unauthorized("call.token_expired", "The join token has expired; join the call again.") from None
    except jwt.InvalidTokenError:
        raise Unauthorized("call.invalid_token", "The join token is not valid.") from None
