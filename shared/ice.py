"""The STUN/TURN servers a client of a call gets (in the join answer and the
SFU's ``joined`` message), as RTCIceServer dictionaries.

``SFERA_SFU_ICE_SERVERS``: comma-separated URLs (``stun:host:3478``,
``turn:host:3478?transport=udp``, ``turns:host:5349``). TURN URLs need
credentials, from one of:

- ``SFERA_TURN_SECRET``: time-limited credentials of the TURN REST API (what
  coturn's ``use-auth-secret`` / ``static-auth-secret`` checks): username
  ``<expiry unix time>:<user id>``, password base64(HMAC-SHA1(secret, username)),
  valid ``SFERA_TURN_TTL`` seconds (default 86400). What production uses.
- ``SFERA_TURN_USERNAME`` / ``SFERA_TURN_PASSWORD``: one static account.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time


def turn_rest_credentials(secret: str, user: str, ttl: int, now: float | None = None) -> tuple[str, str]:
    username = f"{int((time.time() if now is None else now) + ttl)}:{user}"
    password = base64.b64encode(hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()).decode()
    return username, password


def ice_servers(user: str, environ: dict[str, str] | None = None, now: float | None = None) -> list[dict]:
    env = os.environ if environ is None else environ
    urls = [u.strip() for u in env.get("SFERA_SFU_ICE_SERVERS", "").split(",") if u.strip()]
    stun = [u for u in urls if not u.startswith(("turn:", "turns:"))]
    turn = [u for u in urls if u.startswith(("turn:", "turns:"))]
    servers: list[dict] = [{"urls": stun}] if stun else []
    if turn:
        if env.get("SFERA_TURN_SECRET"):
            username, credential = turn_rest_credentials(env["SFERA_TURN_SECRET"], user,
                                                         int(env.get("SFERA_TURN_TTL") or 86400), now)
        else:
            username, credential = env.get("SFERA_TURN_USERNAME", ""), env.get("SFERA_TURN_PASSWORD", "")
        servers.append({"urls": turn, "username": username, "credential": credential})
    return servers
