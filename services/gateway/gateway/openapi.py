"""The OpenAPI 3 document, built from the routes' ``@endpoint`` records and their
marshmallow schemas, and the interactive docs page (Swagger UI, served locally)."""

from __future__ import annotations

import importlib.util
import re
from functools import cache
from pathlib import Path

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Flask, Response, current_app, jsonify, send_from_directory

from gateway.schemas import ErrorResponse
from shared.errors import DomainError

# Packages whose raises the document reads to know each refusal code's status.
_RAISING_PACKAGES = ("gateway", "shared", "identity", "school", "messaging", "calls", "ejournal_bridge")
# What the gateway itself answers, whatever the endpoint (gateway.input, gateway.errors).
_INPUT_ERRORS = ("request.invalid", "request.invalid_text", "request.too_deep", "request.invalid_json",
                 "request.not_json")

API_VERSION = "1.0.0"
_PARAM = re.compile(r"<(?:(\w+):)?(\w+)>")
_CONVERTER_SCHEMA = {"uuid": {"type": "string", "format": "uuid"}, "int": {"type": "integer"}}


def _schema_name(schema: type | object) -> str:
    cls = schema if isinstance(schema, type) else type(schema)
    return cls.__name__


def _error_classes() -> dict[str, int]:
    found: dict[str, int] = {}
    todo = [DomainError]
    while todo:
        cls = todo.pop()
        found[cls.__name__] = cls.status
        todo.extend(cls.__subclasses__())
    return found


@cache
def error_statuses() -> dict[str, frozenset[int]]:
    """Each refusal code and the HTTP statuses it is raised with, read from the raises in the source
    (``Forbidden("chat.members_only", ...)``): the document cannot drift from the code."""
    classes = _error_classes()
    raise_re = re.compile(r"\b(" + "|".join(map(re.escape, classes)) + r")\(\s*\"([a-z0-9_]+\.[a-z0-9_.]+)\"")
    statuses: dict[str, set[int]] = {}
    for package in _RAISING_PACKAGES:
        spec = importlib.util.find_spec(package)
        for folder in (spec.submodule_search_locations or []) if spec else []:
            for source in Path(folder).rglob("*.py"):
                if "tests" in source.parts:
                    continue
                for cls, code in raise_re.findall(source.read_text(encoding="utf-8")):
                    statuses.setdefault(code, set()).add(classes[cls])
    return {code: frozenset(found) for code, found in statuses.items()}


def _status_by_convention(code: str) -> int:
    """Codes raised through a helper (``get_as(..., "x.not_found")``, rate limits), not in a raise of their own."""
    if code.endswith(".not_found"):
        return 404
    if ".too_many" in code or code.endswith("_too_early"):
        return 429
    return 400


def _responses_for(doc, path_params: bool) -> dict[int, list[str]]:
    """Every status an operation may answer besides its success, with the codes behind each."""
    known = error_statuses()
    by_status: dict[int, list[str]] = {400: list(_INPUT_ERRORS)}
    if doc.auth:
        by_status[401] = ["auth.required", "auth.invalid_token", "auth.token_expired"]
    if path_params:
        by_status.setdefault(404, []).append("route.not_found")
    if doc.body is not None:
        by_status[413] = ["request.too_large"]
    for code in doc.errors:
        for status in sorted(known.get(code) or {_status_by_convention(code)}):
            by_status.setdefault(status, []).append(code)
    by_status[503] = ["service.unavailable"]
    return by_status


def build_spec(app: Flask) -> dict:
    spec = APISpec(
        title="Sfera API",
        version=API_VERSION,
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin(schema_name_resolver=_schema_name)],
        info={"description": "School communication platform. Errors always have the shape of ErrorResponse; "
                             "every response carries X-Request-Id."},
    )
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"})
    spec.components.schema("ErrorResponse", schema=ErrorResponse)
    error_ref = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}}
    spec.path(path="/api/v1/realtime", operations={"get": {
        "summary": "WebSocket of live events: MessagePosted, MessageEdited, MessageDeleted, ChatMembersChanged, "
                   "ChatCreated, ChatUpdated, PollVoted, PollClosed, MessagesRead, for the chats one belongs to; "
                   "each is {\"type\": <name>, \"data\": <the event's contract>}. A MessagePosted with "
                   "read_by_author true also says its author (the organization when author_id is null) has read the "
                   "chat up to its seq: no MessagesRead comes for that. A MessagesRead's read_from (a "
                   "MessagePosted's author_read_from) is that reader's mark before: the messages whose readers "
                   "changed are those after it up to the new mark (null: not known, or not told: CH-5). Catch up "
                   "after a reconnect with "
                   "GET /chats/{id}/messages?after=<last seq>.",
        "tags": ["realtime"], "operationId": "realtime",
        "parameters": [{"in": "query", "name": "access_token", "required": True, "schema": {"type": "string"},
                        "description": "The access token (browsers cannot set headers on a WebSocket)"}],
        "responses": {"101": {"description": "Switching to the WebSocket protocol; the first message is "
                                             "{\"type\": \"ready\"}, or {\"type\": \"error\"} and a close"}}}})
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        view = app.view_functions[rule.endpoint]
        doc = getattr(view, "endpoint_doc", None)
        if doc is None:
            continue
        path = _PARAM.sub(lambda m: "{" + m.group(2) + "}", rule.rule)
        parameters = [
            {"in": "path", "name": name, "required": True,
             "schema": ({"type": "string", "enum": list(doc.path_enums[name])} if name in doc.path_enums
                        else _CONVERTER_SCHEMA.get(conv or "", {"type": "string", "minLength": 1}))}
            for conv, name in _PARAM.findall(rule.rule)
        ]
        responses: dict = {str(doc.status): {"description": "OK" if doc.status != 204 else "Done, no content"}}
        if doc.response is not None:
            schema: dict | type = doc.response
            if doc.many:
                schema = {"type": "array", "items": doc.response}
            responses[str(doc.status)]["content"] = {"application/json": {"schema": schema}}
        elif doc.produces != "application/json":
            media_types = (doc.produces,) if isinstance(doc.produces, str) else doc.produces
            responses[str(doc.status)]["content"] = {
                media_type: {"schema": {"type": "string", "format": "binary"}} for media_type in media_types}
        next_cursor = getattr(doc.query, "next_cursor_header", None)  # gateway.listing.ListQuery's lists
        if next_cursor:
            responses[str(doc.status)]["headers"] = {next_cursor: {
                "description": "The next page's cursor (pass it as ?cursor=); absent on the last page and when the "
                               "whole list was asked (no ?limit= nor ?cursor=)", "schema": {"type": "string"}}}
        for status, codes in sorted(_responses_for(doc, bool(parameters)).items()):
            responses[str(status)] = {"description": ", ".join(dict.fromkeys(codes)), **error_ref}
        operation: dict = {"summary": doc.summary, "tags": [doc.tag], "responses": responses,
                           "operationId": rule.endpoint.split(".")[-1]}
        if doc.query is not None:
            parameters.append({"in": "query", "schema": doc.query})
        if parameters:
            operation["parameters"] = parameters
        if doc.body is not None and doc.consumes == "multipart/form-data":
            form = {"type": "object", "required": ["file"], "properties": {
                "file": {"type": "string", "format": "binary"},
                **{name: {"type": "string"} for name in doc.body._declared_fields}}}
            operation["requestBody"] = {"required": True, "content": {"multipart/form-data": {"schema": form}}}
        elif doc.body is not None:
            operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": doc.body}}}
        if doc.auth:
            operation["security"] = [{"bearer": []}]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            spec.path(path=path, operations={method.lower(): operation})
    return spec.to_dict()


docs = Blueprint("docs", __name__)

_DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sfera API</title>
<link rel="stylesheet" href="/docs/static/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script src="/static/docs.js"></script>
</body></html>"""


def _swagger_dir() -> Path:
    import swagger_ui_bundle

    return Path(swagger_ui_bundle.swagger_ui_path)


@docs.get("/openapi.json")
def openapi_json():
    if "openapi" not in current_app.extensions:
        current_app.extensions["openapi"] = build_spec(current_app)
    return jsonify(current_app.extensions["openapi"])


@docs.get("/docs")
def docs_page():
    return Response(_DOCS_PAGE, mimetype="text/html")


@docs.get("/docs/static/<path:filename>")
def docs_static(filename: str):
    return send_from_directory(_swagger_dir(), filename)
