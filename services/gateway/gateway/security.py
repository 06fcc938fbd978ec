"""The security headers of every gateway response, the errors gunicorn answers by
itself included: a Content-Security-Policy per kind of page, no sniffing, no
referrer, no framing, and HSTS when the platform is public over https."""

from __future__ import annotations

from urllib.parse import urlsplit

from gateway.webapp import is_page
from shared.config import env_str

_COMMON = "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
# JSON, files and everything that is not a page: nothing may run or load.
API_CSP = f"default-src 'none'; {_COMMON}"
# Swagger UI: its own scripts only; it sets styles inline and draws small data: images.
DOCS_CSP = f"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; {_COMMON}"


def web_app_csp() -> str:
    """The web client (gateway.webapp): its own scripts and styles only (the build has nothing inline),
    images and media from itself plus blob: (QR codes and attachments fetched with the access token) and
    mediastream: (the camera), the API and its realtime socket on this origin, and the SFU's signaling
    socket (a call at /call/<id> is one of its pages): the configured one, and each node's
    (``wss://<node>.<SFERA_SFU_NODE_DOMAIN>/ws``, what calls hands out when several nodes run: without it the
    browser refused every call's socket in the Kubernetes deployment)."""
    sfu = urlsplit(env_str("SFERA_SFU_URL", "ws://127.0.0.1:8300/ws"))
    nodes = env_str("SFERA_SFU_NODE_DOMAIN", "").strip().strip(".")
    sockets = f"{sfu.scheme}://{sfu.netloc}" + (f" wss://*.{nodes}" if nodes else "")
    return (f"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
            f"media-src 'self' blob: mediastream:; connect-src 'self' {sockets}; "
            f"manifest-src 'self'; {_COMMON}")


def csp_for(path: str) -> str:
    if path == "/docs" or path.startswith("/docs/"):
        return DOCS_CSP
    if is_page(path):
        return web_app_csp()
    return API_CSP


def security_headers(path: str) -> dict[str, str]:
    headers = {
        "Content-Security-Policy": csp_for(path),
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Cross-Origin-Opener-Policy": "same-origin",
    }
    if env_str("SFERA_PUBLIC_URL", "http://localhost:8080").lower().startswith("https://"):
        headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
    return headers
