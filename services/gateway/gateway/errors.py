"""The one place where failures become HTTP responses with one shape:
``{"error": {"code", "message", "details"}}`` plus the request id."""

from __future__ import annotations

import socket

from flask import Flask, g, jsonify, request
from kombu.exceptions import OperationalError
from marshmallow import ValidationError
from nameko.exceptions import RemoteError, RpcTimeout, UnknownService
from werkzeug.exceptions import HTTPException

from shared.errors import DomainError
from shared.observability.logging import get_logger

log = get_logger("gateway.errors")

UNAVAILABLE = (RpcTimeout, UnknownService, OperationalError, ConnectionError, socket.error, TimeoutError)


def error_response(status: int, code: str, message: str, details: dict | None = None):
    body = {"error": {"code": code, "message": message, "details": details or {}}}
    request_id = getattr(g, "request_id", None)
    if request_id:
        body["error"]["request_id"] = request_id
    response = jsonify(body)
    response.status_code = status
    if status in (429, 503) and isinstance((details or {}).get("retry_after"), int):
        # Every refusal that says when to come back says it to HTTP clients too (RFC 9110 Retry-After).
        response.headers["Retry-After"] = str(details["retry_after"])
    return response


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def domain_error(exc: DomainError):
        return error_response(exc.status, exc.code, exc.message, exc.details)

    @app.errorhandler(ValidationError)
    def validation_error(exc: ValidationError):
        return error_response(400, "request.invalid", "The request is not valid.", {"fields": exc.messages})

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        codes = {404: "route.not_found", 405: "route.method_not_allowed", 413: "request.too_large",
                 415: "request.unsupported_media_type"}
        code = codes.get(exc.code or 500, "request.invalid" if (exc.code or 500) < 500 else "internal")
        details = {"max_bytes": g.get("body_limit", request.max_content_length)} if exc.code == 413 else None
        return error_response(exc.code or 500, code, exc.description or exc.name, details)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        if isinstance(exc, UNAVAILABLE):
            log.warning("service unavailable", extra={"error": repr(exc)})
            return error_response(503, "service.unavailable", "A service is not answering; try again shortly.")
        if isinstance(exc, RemoteError):
            log.error("service failed", extra={"error": str(exc)})
            return error_response(502, "service.failed", "A service failed to answer this request.")
        log.exception("unhandled error")
        return error_response(500, "internal", "Something went wrong on our side.")
