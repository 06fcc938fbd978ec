"""The OpenAPI 3 document, built from the routes' ``@endpoint`` records and their
marshmallow schemas, and the interactive docs page (Swagger UI, served locally)."""

from __future__ import annotations

import re
from pathlib import Path

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Flask, Response, current_app, jsonify, send_from_directory

from gateway.schemas import ErrorResponse

API_VERSION = "1.0.0"
_PARAM = re.compile(r"<(?:(\w+):)?(\w+)>")
_CONVERTER_SCHEMA = {"uuid": {"type": "string", "format": "uuid"}, "int": {"type": "integer"}}


def _schema_name(schema: type | object) -> str:
    cls = schema if isinstance(schema, type) else type(schema)
    return cls.__name__


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
                   "each is {\"type\": <name>, \"data\": <the event's contract>}. Catch up after a reconnect with "
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
             "schema": _CONVERTER_SCHEMA.get(conv or "", {"type": "string"})}
            for conv, name in _PARAM.findall(rule.rule)
        ]
        responses: dict = {str(doc.status): {"description": "OK" if doc.status != 204 else "Done, no content"}}
        if doc.response is not None:
            schema: dict | type = doc.response
            if doc.many:
                schema = {"type": "array", "items": doc.response}
            responses[str(doc.status)]["content"] = {"application/json": {"schema": schema}}
        elif doc.produces != "application/json":
            responses[str(doc.status)]["content"] = {doc.produces: {"schema": {"type": "string", "format": "binary"}}}
        responses["400"] = {"description": "Invalid request (request.invalid, ...)", **error_ref}
        if doc.auth:
            responses["401"] = {"description": "Not signed in (auth.required, auth.invalid_token)", **error_ref}
        if doc.errors:
            responses["default"] = {"description": "Refusals: " + ", ".join(doc.errors), **error_ref}
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
