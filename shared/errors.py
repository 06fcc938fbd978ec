"""Typed domain errors shared by every service and mapped to HTTP by the gateway.

Each error carries a stable machine code (``invite.expired``), a human message
and optional details. They cross nameko RPC as themselves (registered with
``deserialize_to_instance``), so the gateway can map them in one place.
"""

from __future__ import annotations

import json
from typing import Any

from nameko.exceptions import deserialize_to_instance


class DomainError(Exception):
    """Base of every expected, typed error. ``status`` is the HTTP status."""

    status = 400
    default_code = "error"

    def __init__(self, code: str | None = None, message: str = "", details: dict[str, Any] | str | None = None):
        self.code = code or self.default_code
        self.message = message or self.code
        # nameko turns every value in exception args into a string on the wire;
        # details travel as one JSON string so numbers and lists arrive intact.
        self.details = json.loads(details) if isinstance(details, str) else (details or {})
        super().__init__(self.code, self.message, json.dumps(self.details, default=str))

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


@deserialize_to_instance
class Invalid(DomainError):
    status = 400
    default_code = "invalid"


@deserialize_to_instance
class Unauthorized(DomainError):
    status = 401
    default_code = "auth.required"


@deserialize_to_instance
class Forbidden(DomainError):
    status = 403
    default_code = "forbidden"


@deserialize_to_instance
class NotFound(DomainError):
    status = 404
    default_code = "not_found"


@deserialize_to_instance
class Conflict(DomainError):
    status = 409
    default_code = "conflict"


@deserialize_to_instance
class Gone(DomainError):
    status = 410
    default_code = "gone"


@deserialize_to_instance
class TooManyRequests(DomainError):
    status = 429
    default_code = "rate_limited"


# Registered so that a DomainError raised directly still arrives typed.
deserialize_to_instance(DomainError)


@deserialize_to_instance
class Unavailable(DomainError):
    """Something outside the platform (a regional e-journal) did not answer."""

    status = 503
    default_code = "unavailable"


class NotYet(Exception):
    """The event depends on another one that has not arrived yet (events of
    different types travel in different queues, so their order is not kept).
    An application raises it; the bus consumer retries the event with back-off
    like any failure, logged quietly."""
