"""The web client (``web/``, built by ``make setup`` into ``web/dist``) served at ``/``.

- ``/assets/*``: Vite's content-hashed files, cached for a year (``immutable``);
- any other path that is not the API's (``/api/``, ``/openapi.json``, ``/docs``, ``/static/``,
  ``/metrics``, ``/healthz``) is a page of the client: a file of the build when
  there is one (``favicon.svg``), else ``index.html`` (history-mode routing: ``/invite/<token>``,
  ``/parent-invite/<token>``, ``/chat-invite/<token>``, ``/ejournal/link``, a call's ``/call/<id>`` are its pages),
  revalidated on every load (``no-cache``) so a new release is picked up at once.

Without a build (an API-only deployment) ``/`` describes the API as before.
"""

from __future__ import annotations

import re
from pathlib import Path

from flask import Flask, jsonify, send_from_directory
from werkzeug.routing import PathConverter

from shared.config import env_str

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
# Paths the client never owns: the API and the gateway's own pages keep their 404s and 405s.
_NOT_PAGES = r"(?:api|docs|static|assets)(?:/|$)|openapi\.json$|metrics$|healthz$"
_NOT_PAGES_RE = re.compile(_NOT_PAGES)


def web_dist() -> Path:
    default = Path(__file__).resolve().parents[3] / "web" / "dist"
    return Path(env_str("SFERA_WEB_DIST", str(default)))


def is_page(path: str) -> bool:
    """Whether a request path is a page of the web client (it gets the client's CSP)."""
    return not _NOT_PAGES_RE.match(path.lstrip("/"))


class PagePath(PathConverter):
    regex = rf"(?!{_NOT_PAGES})[^/].*?"


def install(app: Flask) -> None:
    dist = web_dist()
    app.url_map.converters["page"] = PagePath

    if not (dist / "index.html").is_file():
        @app.get("/")
        def index():
            return jsonify({"name": "Sfera API", "api": "/api/v1", "openapi": "/openapi.json", "docs": "/docs"})

        return

    def index_html():
        response = send_from_directory(dist, "index.html", mimetype="text/html", max_age=0)
        response.headers["Cache-Control"] = REVALIDATE
        return response

    @app.get("/")
    def web_index():
        return index_html()

    @app.get("/assets/<path:filename>")
    def web_asset(filename: str):
        response = send_from_directory(dist / "assets", filename, max_age=31536000)  # 404 when absent
        response.headers["Cache-Control"] = IMMUTABLE
        return response

    @app.get("/<page:path>")
    def web_page(path: str):
        candidate = (dist / path).resolve()
        if candidate.is_relative_to(dist.resolve()) and candidate.is_file():
            response = send_from_directory(dist, path, max_age=0)
            response.headers["Cache-Control"] = REVALIDATE
            return response
        return index_html()
