"""What the HTTP servers in front of Flask answer themselves, before a request reaches the application: gunicorn
(``gateway.gunicorn_conf``) and the asyncio front (``gateway.realtime_server``) refuse with the same limits, the
same statuses and the API's one error shape ``{"error": {"code", "message", "details"}}`` with the security
headers, so a client cannot tell which server fronts the gateway."""

from __future__ import annotations

import json

from gateway.security import security_headers

# gunicorn's limit_request_line / limit_request_fields / limit_request_field_size (bytes, headers, bytes)
REQUEST_LINE_MAX = 4094
HEADERS_MAX = 100
HEADER_FIELD_MAX = 8190
SERVER_NAME = "sfera"  # the Server header of every answer: no server software named

CODES = {400: "request.invalid", 403: "request.forbidden", 413: "request.too_large", 414: "request.uri_too_long",
         431: "request.headers_too_large", 417: "request.expectation_failed", 501: "request.not_implemented",
         500: "internal"}
MESSAGES = {413: "The body is larger than this endpoint takes.",
            414: "The request line (method and URL) is too long.",
            431: "The request's headers are too large or too many."}


def refusal(status: int, message: str = "", code: str | None = None) -> tuple[bytes, dict[str, str]]:
    """The body and headers (``Content-Type`` and the security headers) of a server's own answer."""
    body = json.dumps({"error": {"code": code or CODES.get(status, "request.invalid" if status < 500 else "internal"),
                                 "message": MESSAGES.get(status, message or "The request is not valid."),
                                 "details": {}}}).encode()
    return body, {"Content-Type": "application/json", **security_headers("/")}


NEAR = 64  # bytes (or headers) from a limit where the C parser's reading is checked by the Python one


def near_a_limit(message) -> bool:
    """Whether a request the C parser read is within NEAR of a limit the Python parser measures its own way: the
    request line (method, target and version: the C parser counts the target), HEADERS_MAX lines of head
    (request line and end included), HEADER_FIELD_MAX a header line (its name, colon, spaces and value)."""
    if len(message.method) + len(message.path) * 4 + 10 > REQUEST_LINE_MAX - NEAR and (
            len(message.method) + len(message.path.encode("utf-8", "surrogateescape")) + 10
            > REQUEST_LINE_MAX - NEAR):
        return True
    raw = message.raw_headers
    if len(raw) + 2 > HEADERS_MAX - 2:
        return True
    for name, value in raw:
        if len(name) + len(value) > HEADER_FIELD_MAX - NEAR:
            return True
    return False
