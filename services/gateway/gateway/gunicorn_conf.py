"""gunicorn settings of the gateway (``gunicorn -c python:gateway.gunicorn_conf``).

gunicorn answers some requests before Flask sees them (a request line over
``limit_request_line``: 414; headers over ``limit_request_field_size`` or too many:
431; a malformed request: 400). Those answers get the API's one error shape and
security headers here, not gunicorn's HTML page; no response names the server
software; and a ``Connection: close`` from the application (a refused body it did
not read) closes the connection instead of draining the body for keep-alive.
"""

from __future__ import annotations

from gunicorn import util
from gunicorn.http import wsgi

from gateway.http_refusals import HEADER_FIELD_MAX, HEADERS_MAX, REQUEST_LINE_MAX, SERVER_NAME, refusal

limit_request_line = REQUEST_LINE_MAX
limit_request_fields = HEADERS_MAX
limit_request_field_size = HEADER_FIELD_MAX


def error_bytes(status: int, reason: str, message: str) -> bytes:
    """A whole HTTP/1.1 error response in the API's shape (gunicorn writes it to the socket itself)."""
    body, headers = refusal(status, message or reason)
    headers.update({"Content-Length": str(len(body)), "Connection": "close"})
    head = f"HTTP/1.1 {status} {reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    return head.encode("latin-1") + body


def write_error(sock, status_int: int, reason: str, mesg: str) -> None:
    util.write_nonblock(sock, error_bytes(status_int, reason, mesg))


_process_headers = wsgi.Response.process_headers


def process_headers(self, headers) -> None:
    _process_headers(self, headers)
    if any(name.lower() == "connection" and value.strip().lower() == "close" for name, value in headers):
        self.force_close()


# gunicorn looks these up at call time (``util.write_error``, ``SERVER`` when a response starts).
util.write_error = write_error
wsgi.SERVER = SERVER_NAME
wsgi.Response.process_headers = process_headers
