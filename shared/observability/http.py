"""A small HTTP server for processes that have no web framework of their own
(nameko services, relays): ``/metrics`` for Prometheus and ``/healthz`` with
named checks (process, store, broker).

The port answers from the process's first moments, before it does its work (a nameko runner starting its
consumers and RPC entry points, a relay before its loop runs). ``/healthz`` says ok only once the process has
told its ``Readiness`` it is ready: until then 503 ``"status": "starting"``, and 503 ``"stopping"`` once a stop
was asked for, whatever the checks say (deploy/k8s's readiness probes and the devstack's supervisor read it).
``/livez`` is the liveness probe's: 200 as long as the process answers, no check run (cheap; a broker or store
outage makes the processes unready, it does not restart them all, and they reconnect by themselves)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from shared.observability.gc import export_gc_metrics

HealthCheck = Callable[[], None]  # raises when unhealthy


class Readiness:
    """Whether the process does its work: ``starting`` until ``ready()``, ``ok`` then, ``stopping`` after
    ``stopping()`` (which wins: a stop asked for during the start stays a stop)."""

    MESSAGES = {"starting": "the process has not started its work yet (consumers, entry points, loop)",
                "stopping": "the process is stopping"}

    def __init__(self) -> None:
        self.state = "starting"

    def ready(self) -> None:
        if self.state == "starting":
            self.state = "ok"

    def stopping(self) -> None:
        self.state = "stopping"


def run_checks(checks: dict[str, HealthCheck]) -> tuple[bool, dict[str, str]]:
    results: dict[str, str] = {}
    healthy = True
    for name, check in list(checks.items()):  # a copy: the runner adds checks while its entry points start
        try:
            check()
            results[name] = "ok"
        except Exception as exc:  # a failing check is reported, not raised
            healthy = False
            results[name] = f"failing: {exc}"
    return healthy, results


def make_wsgi_app(process: str, checks: dict[str, HealthCheck], readiness: Readiness | None = None):
    def app(environ, start_response):
        path = environ.get("PATH_INFO", "/")
        if path == "/metrics":
            start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
            return [generate_latest()]
        if path == "/livez":  # liveness: the process answers; no check (a broker outage restarts nothing)
            start_response("200 OK", [("Content-Type", "application/json")])
            return [json.dumps({"process": process, "status": "alive"}).encode()]
        if path in ("/healthz", "/health"):
            healthy, results = run_checks(checks)
            answer = {"process": process, "status": "ok" if healthy else "failing", "checks": results}
            state = "ok" if readiness is None else readiness.state  # read once: the runner's thread changes it
            if state != "ok":
                healthy = False
                answer.update(status=state, message=Readiness.MESSAGES[state])
            body = json.dumps(answer)
            status = "200 OK" if healthy else "503 Service Unavailable"
            start_response(status, [("Content-Type", "application/json")])
            return [body.encode()]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]

    return app


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # scrapes every few seconds are not news
        pass


def serve(process: str, port: int, checks: dict[str, HealthCheck], readiness: Readiness | None = None,
          host: str = "127.0.0.1") -> WSGIServer | None:
    """Serve /metrics, /healthz and /livez on ``port`` in a daemon thread (0: do nothing); with ``readiness``,
    /healthz is 503 until it is ready. The process's garbage collections are measured into its metrics from now on
    (shared/observability/gc.py), a port or none."""
    export_gc_metrics(process)
    if not port:
        return None
    server = make_server(host, port, make_wsgi_app(process, checks, readiness), handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name=f"{process}-metrics", daemon=True)
    thread.start()
    return server
