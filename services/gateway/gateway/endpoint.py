"""``@endpoint``: validates the body with a marshmallow schema, authenticates when
asked, dumps the result, and records what the OpenAPI document says about it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any

from flask import Response, g, jsonify, request
from marshmallow import Schema

from shared.auth import Principal, verify_access_token
from shared.errors import Invalid, Unauthorized


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
    produces: str = "application/json"
    query: type[Schema] | None = None
    consumes: str = "application/json"


def current_principal() -> Principal:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("auth.required", "Sign in first: send 'Authorization: Bearer <access token>'.")
    return verify_access_token(token.strip())


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
    produces: str = "application/json",
    query: type[Schema] | None = None,
    consumes: str = "application/json",
) -> Callable:
    doc = EndpointDoc(summary, tag, body, response, status, auth, errors, many, produces, query, consumes)

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any):
            if auth:
                g.principal = current_principal()
            if query is not None:
                kwargs["query"] = query().load(request.args.to_dict())
            if body is not None and consumes == "multipart/form-data":
                kwargs["body"] = body().load(request.form.to_dict())
            elif body is not None:
                payload = request.get_json(silent=True)
                if not isinstance(payload, dict):
                    raise Invalid("request.not_json", "The body must be a JSON object.")
                kwargs["body"] = body().load(payload)
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
