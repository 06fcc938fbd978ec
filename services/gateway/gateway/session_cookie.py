"""The browser's refresh token lives in an httpOnly cookie, never in the page's JavaScript.

A client that sends ``X-Sfera-Session: cookie`` (the web client) gets its refresh token as a
cookie on sign-in and refresh, and the JSON answer without it: httpOnly (scripts cannot read
it), SameSite=Strict, Secure over https or in production, and sent only to the refresh path.
Its refresh then has no body token: the cookie is used, and only with that header (a cross-site
form or link cannot send a custom header, and a cross-origin script would need a CORS preflight
the gateway does not grant) from this site's own origin when the browser names one. Sign-out
clears the cookie. Clients without the header (apps, the e2e client) keep the JSON
``refresh_token`` flow, untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from flask import Response, jsonify, request

from gateway.errors import error_response
from shared.config import env_str
from shared.errors import DomainError, Forbidden, Unauthorized

HEADER = "X-Sfera-Session"
COOKIE = "sfera_refresh"
COOKIE_PATH = "/api/v1/auth/refresh"
# identity ends a session unused for 30 days (SESSION_IDLE_LIMIT); each refresh renews the cookie.
MAX_AGE = 30 * 24 * 3600


def cookie_mode() -> bool:
    return request.headers.get(HEADER, "").strip().lower() == "cookie"


def secure() -> bool:
    return (request.is_secure or env_str("SFERA_ENV", "development") == "production"
            or env_str("SFERA_PUBLIC_URL", "http://localhost:8080").lower().startswith("https://"))


def issued(result: dict[str, Any], status: int = 200) -> Any:
    """A sign-in's or refresh's answer: as it is, or for a cookie client its refresh token moved into the cookie."""
    if not cookie_mode():
        return result
    body = {k: v for k, v in result.items() if k != "refresh_token"}
    response = jsonify(body)
    response.status_code = status
    response.set_cookie(COOKIE, result["refresh_token"], max_age=MAX_AGE, path=COOKIE_PATH, secure=secure(),
                        httponly=True, samesite="Strict")
    response.headers["Cache-Control"] = "no-store"
    return response


# Identity's refusals of a refresh that end the session for good: a cookie holding such a token is dropped.
SESSION_OVER = ("auth.invalid_refresh", "auth.refresh_reused", "auth.session_revoked", "auth.session_expired")


def refreshed(refresh: Callable[[], dict[str, Any]]) -> Any:
    """The refresh's answer (``issued``); a cookie client whose session identity says is over gets the refusal
    with the cookie removed, so the browser stops presenting a dead token."""
    try:
        return issued(refresh())
    except DomainError as exc:
        if not (cookie_mode() and exc.code in SESSION_OVER):
            raise
        return cleared(error_response(exc.status, exc.code, exc.message, exc.details))


def cleared(response: Response) -> Response:
    """``response`` that also removes the cookie (signed out)."""
    response.delete_cookie(COOKIE, path=COOKIE_PATH, secure=secure(), httponly=True, samesite="Strict")
    return response


def same_origin() -> bool:
    origin = request.headers.get("Origin")
    if origin is None:  # browsers send Origin on every POST; its absence is a non-browser client
        return True
    parts = urlsplit(origin)
    public = urlsplit(env_str("SFERA_PUBLIC_URL", "http://localhost:8080"))
    # The origins the gateway already lets call it (Vite's dev server, whose proxy rewrites Host) count as its own.
    trusted = {o.strip() for o in env_str("SFERA_CORS_ORIGINS", "http://localhost:5173").split(",") if o.strip()}
    return (parts.netloc == request.host or (parts.scheme, parts.netloc) == (public.scheme, public.netloc)
            or origin in trusted)


def refresh_token(body_token: str | None) -> str:
    """The token a refresh request presents: its body's, else (cookie clients) the cookie's."""
    if body_token:
        return body_token
    if not cookie_mode():
        if request.cookies.get(COOKIE):
            raise Forbidden("auth.refresh_header_required",
                            f"Refreshing with the session cookie needs the '{HEADER}: cookie' header.")
        raise Unauthorized("auth.invalid_refresh", "Send the refresh token in the body (refresh_token).")
    if not same_origin():
        raise Forbidden("auth.origin_refused", "This refresh comes from another site.")
    token = request.cookies.get(COOKIE)
    if not token:
        raise Unauthorized("auth.invalid_refresh", "No session cookie: sign in again.")
    return token
