"""``@endpoint``: bounds and checks what comes in (body size, JSON depth, text that
is not Unicode), validates the body and query with marshmallow schemas,
authenticates when asked, dumps the result, and records what the OpenAPI document
says about it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any

from flask import Response, current_app, g, jsonify, request
from marshmallow import Schema

from gateway.input import check_text, content_too_large, parse_json
from shared.auth import Principal, verify_access_token
from shared.contracts.api import one as schema_of  # one instance of each schema a process
from shared.errors import Invalid, Unauthorized

FORM_OVERHEAD = 64 * 1024  # a multipart body's boundaries and small fields beside the file


@dataclass(frozen=True)
class EndpointDoc:
    summary: str
    tag: str
    body: type[Schema] | None
    response: type[Schema] | None
    status: int
    auth: bool
    errors: tuple[str, ...] = field(default_factory=tuple)
    many: bool = False
    produces: str | tuple[str, ...] = "application/json"
    query: type[Schema] | None = None
    consumes: str = "application/json"
    max_bytes: Callable[[], int] | None = None
    path_enums: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def body_limit(self) -> int:
        """The most this endpoint reads: its own limit (uploads, webhooks), else the JSON limit."""
        if self.max_bytes is not None:
            return self.max_bytes()
        if self.consumes == "multipart/form-data":
            return current_app.config["UPLOAD_MAX_BYTES"]
        return current_app.config["MAX_CONTENT_LENGTH"]


def current_principal() -> Principal:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("auth.required", "Sign in first: send 'Authorization: Bearer <access token>'.")
    return verify_access_token(token.strip())


def json_body(limit: int) -> Any:
    """The request's JSON (``None`` when it is not JSON), read up to ``limit`` bytes."""
    if not request.is_json:
        return None
    data = request.get_data(cache=True)
    if len(data) > limit:
        raise content_too_large(limit)
    return parse_json(data)


def endpoint(
    *,
    summary: str,
    tag: str,
    body: type[Schema] | None = None,
    response: type[Schema] | None = None,
    status: int = 200,
    auth: bool = True,
    errors: tuple[str, ...] = (),
    many: bool = False,
    produces: str | tuple[str, ...] = "application/json",
    query: type[Schema] | None = None,
    consumes: str = "application/json",
    max_bytes: Callable[[], int] | None = None,
    path_enums: dict[str, tuple[str, ...]] | None = None,
) -> Callable:
    """``max_bytes``: the body limit of an endpoint that takes more than JSON bodies do
    (multipart uploads add a little for the form's own parts)."""
    doc = EndpointDoc(summary, tag, body, response, status, auth, errors, many, produces, query, consumes,
                      max_bytes, path_enums or {})

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any):
            # Before anything is read: a declared length over the limit is refused at once, an
            # undeclared (chunked) one is cut off while reading.
            limit = doc.body_limit() + (FORM_OVERHEAD if consumes == "multipart/form-data" else 0)
            if (request.content_length or 0) > limit:
                raise content_too_large(limit)
            # werkzeug stops a chunked body at this maximum (a form parser that reads past it gets a 413; a
            # plain read is cut short): one byte over tells a body over the limit from one exactly at it.
            request.max_content_length = limit + 1
            g.body_limit = limit
            check_text(kwargs, "path")
            check_text(request.args.to_dict(flat=False), "query")
            if auth:
                g.principal = current_principal()
            if query is not None:
                kwargs["query"] = schema_of(query).load(request.args.to_dict())
            if body is not None and consumes == "multipart/form-data":
                form = request.form.to_dict()
                check_text(form, "form")
                kwargs["body"] = schema_of(body).load(form)
            elif body is not None:
                payload = json_body(limit)
                if not isinstance(payload, dict):
                    raise Invalid("request.not_json", "The body must be a JSON object.")
                kwargs["body"] = schema_of(body).load(payload)
            result = view(*args, **kwargs)
            if isinstance(result, Response):
                return result
            if status == 204:
                return Response(status=204)
            # Services answer with what their own schemas dumped (the same classes
            # document ``response`` here), so the result goes out as it is.
            return jsonify(result), status

        wrapper.endpoint_doc = doc  # type: ignore[attr-defined]
        return wrapper

    return decorate
