"""A small HTTP server for processes that have no web framework of their own
(nameko services, relays): ``/metrics`` for Prometheus and ``/healthz`` with
named checks (process, store, broker)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

HealthCheck = Callable[[], None]  # raises when unhealthy


def run_checks(checks: dict[str, HealthCheck]) -> tuple[bool, dict[str, str]]:
    results: dict[str, str] = {}
    healthy = True
    for name, check in checks.items():
        try:
            check()
            results[name] = "ok"
        except Exception as exc:  # a failing check is reported, not raised
            healthy = False
            results[name] = f"failing: {exc}"
    return healthy, results


def make_wsgi_app(process: str, checks: dict[str, HealthCheck]):
    def app(environ, start_response):
        path = environ.get("PATH_INFO", "/")
        if path == "/metrics":
            start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
            return [generate_latest()]
        if path in ("/healthz", "/health"):
            healthy, results = run_checks(checks)
            body = json.dumps({"process": process, "status": "ok" if healthy else "failing", "checks": results})
            status = "200 OK" if healthy else "503 Service Unavailable"
            start_response(status, [("Content-Type", "application/json")])
            return [body.encode()]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]

    return app


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # scrapes every few seconds are not news
        pass


def serve(process: str, port: int, checks: dict[str, HealthCheck], host: str = "127.0.0.1") -> WSGIServer | None:
    """Serve /metrics and /healthz on ``port`` in a daemon thread (0: do nothing)."""
    if not port:
        return None
    server = make_server(host, port, make_wsgi_app(process, checks), handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name=f"{process}-metrics", daemon=True)
    thread.start()
    return server
