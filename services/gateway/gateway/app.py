"""The gateway's Flask application: request ids, body limits, security headers, CORS,
metrics, health, API v1, docs.

Run: ``gunicorn -c python:gateway.gunicorn_conf -k gthread --threads 16 'gateway.app:create_app()'``.
"""

from __future__ import annotations

import re
import time
import uuid

from flask import Flask, Response, g, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway import calls_api, ejournal_api, messaging_api, realtime, school_api, webapp  # noqa: F401  (they register their routes on the API blueprint)
from gateway.api import api
from gateway.errors import register_error_handlers
from gateway.input import GatewayJSONProvider
from gateway.openapi import docs
from gateway.rpc import RpcPool
from gateway.security import security_headers
from shared.blobs import document_max_bytes
from shared.config import env_int, env_str, settings
from shared.contracts.api.messaging import ATTACHMENT_KINDS, attachment_max_bytes
from shared.observability import metrics
from shared.observability.gc import export_gc_metrics
from shared.observability.http import run_checks
from shared.observability.logging import configure_logging, get_logger, request_id_var
from shared.production import check_production

log = get_logger("gateway")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def _ping_broker() -> None:
    from kombu import Connection

    with Connection(settings().amqp_uri, connect_timeout=2) as conn:
        conn.connect()


def _body_left_unread(req) -> bool:
    """A request body this answer leaves unread, or read only in part. gunicorn drains at most 64 KB of it for
    keep-alive and otherwise closes the connection without saying so: a client (the asyncio front's pool, a
    browser) that sent its next request on it lost that request (CI: a 502 after a 413). Such an answer says
    ``Connection: close``, whatever its status or the body's size."""
    if "chunked" in req.headers.get("Transfer-Encoding", "").lower():
        return True  # where its end is is not known here
    if not req.content_length:
        return False
    stream = req.__dict__.get("stream")  # werkzeug's cached property: there once the body was read
    # What was read, not ``is_exhausted``: under gunicorn (``wsgi.input_terminated``) werkzeug bounds the stream by
    # the endpoint's maximum, whose end is not the body's (every POST read whole closed its connection).
    return stream is None or stream.tell() < req.content_length


def create_app(rpc: RpcPool | None = None) -> Flask:
    check_production("gateway")  # raises before anything starts: gunicorn then stops with the message
    configure_logging("gateway")
    export_gc_metrics("gateway")
    app = Flask(__name__)
    app.json = GatewayJSONProvider(app)  # bounded depth, storable text (gateway.input)
    # Every body is cut off at the JSON limit unless its endpoint takes more (uploads, webhooks:
    # ``@endpoint(max_bytes=...)``); the largest upload bounds a multipart endpoint that names none.
    app.config["MAX_CONTENT_LENGTH"] = env_int("SFERA_JSON_MAX_BYTES", 1 << 20)
    app.config["UPLOAD_MAX_BYTES"] = max(document_max_bytes(), *(attachment_max_bytes(k) for k in ATTACHMENT_KINDS))
    app.extensions["rpc"] = rpc or RpcPool(
        settings().amqp_uri, size=env_int("SFERA_GATEWAY_RPC_POOL", 16), timeout=env_int("SFERA_RPC_TIMEOUT", 10)
    )
    realtime.install(app, settings().amqp_uri, app.extensions["rpc"], start_consumer=rpc is None)
    allowed_origins = {o.strip() for o in env_str("SFERA_CORS_ORIGINS", "http://localhost:5173").split(",") if o}

    @app.before_request
    def start_request():
        incoming = request.headers.get("X-Request-Id", "")
        g.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        g.started = time.perf_counter()
        request_id_var.set(g.request_id)
        if request.method == "OPTIONS" and request.headers.get("Access-Control-Request-Method"):
            return Response(status=204)
        return None

    @app.after_request
    def finish_request(response: Response) -> Response:
        response.headers["X-Request-Id"] = g.get("request_id", "")
        response.headers.update(security_headers(request.path))
        if request.path.startswith("/api/"):  # answers are one person's: a browser or proxy keeps none of them
            response.headers.setdefault("Cache-Control", "no-store")
        if _body_left_unread(request):  # not drained for keep-alive: the connection closes (gunicorn_conf)
            response.headers["Connection"] = "close"
        origin = request.headers.get("Origin")
        if origin and (origin in allowed_origins or "*" in allowed_origins):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Vary"] = "Origin"
            response.headers["Access-Control-Allow-Headers"] = ("Authorization, Content-Type, X-Request-Id, "
                                                                "Idempotency-Key")
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
            response.headers["Access-Control-Expose-Headers"] = "X-Request-Id"
            response.headers["Access-Control-Max-Age"] = "600"
        route = request.url_rule.rule if request.url_rule else "unmatched"
        if "started" in g:
            elapsed = time.perf_counter() - g.started
            metrics.http_duration.labels(metrics.method_label(request.method), route,
                                         metrics.status_label(response.status_code)).observe(elapsed)
            if route not in ("/metrics", "/healthz"):
                log.info("request", extra={"method": request.method, "route": route,
                                           "status": response.status_code, "ms": round(elapsed * 1000, 2)})
        return response

    @app.get("/healthz")
    def healthz():
        consumer = app.extensions.get("realtime_consumer")

        def realtime_check() -> None:
            if consumer is not None and not consumer.ready.is_set():
                raise RuntimeError("the realtime consumer is not connected to the broker")

        healthy, checks = run_checks({"broker": _ping_broker, "realtime": realtime_check})
        return jsonify({"process": "gateway", "status": "ok" if healthy else "failing", "checks": checks}), (
            200 if healthy else 503
        )

    @app.get("/metrics")
    def prometheus_metrics():
        return Response(generate_latest(), mimetype=CONTENT_TYPE_LATEST)

    webapp.install(app)  # the web client at / (history fallback), or the API's description without a build
    register_error_handlers(app)
    app.register_blueprint(api)
    app.register_blueprint(docs)
    return app
