"""The simulated e-journal's HTTP side: OAuth 2 authorization code (with PKCE)
for its people, the signed-in person, a OneRoster-style read API with the
timetable, the "connect the messenger" start of a link from the journal's side,
and an admin endpoint that pushes the whole school to the platform by webhooks.
Several regions are served at once, each under ``/r/<region>/``."""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from html import escape
from urllib.parse import urlencode

from flask import Blueprint, Flask, abort, jsonify, redirect, request

from shared.compare import same_secret
from tools.ejournal_sim.fixture import School, build_school
from tools.ejournal_sim.webhooks import WebhookSender

FORM = """<!doctype html><meta charset="utf-8"><title>{title}</title>
<h1>{title}</h1><p>Вход для подключения мессенджера</p>
<form method="post">{hidden}
<label>Логин <input name="login" value="{hint}"></label>
<label>Пароль <input name="password" type="password"></label>
<button>Войти</button></form>"""


class Region:
    def __init__(self, school: School, client_id: str, client_secret: str):
        self.school = school
        self.client_id = client_id
        self.client_secret = client_secret
        self.codes: dict[str, dict] = {}
        self.tokens: dict[str, str] = {}  # access token -> person sourcedId
        self.platform: dict = {}  # provider_id, webhook_url, webhook_secret, link_url
        self.lock = threading.Lock()


def region_blueprint(name: str, region: Region) -> Blueprint:
    bp = Blueprint(f"region_{name}", __name__, url_prefix=f"/r/{name}")
    school = region.school

    def person_from_bearer() -> dict:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        sourced_id = region.tokens.get(token)
        if sourced_id is None:
            abort(401)
        return school.user(sourced_id)

    def check_client() -> None:
        auth = request.authorization
        if auth is None or (auth.username, auth.password) != (region.client_id, region.client_secret):
            abort(401)

    @bp.get("/oauth/authorize")
    def authorize_form():
        args = request.args
        if args.get("client_id") != region.client_id or not args.get("redirect_uri") or \
                args.get("response_type") != "code" or args.get("code_challenge_method") != "S256":
            return jsonify(error="invalid_request"), 400
        hidden = "".join(f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">' for k, v in args.items()
                         if k != "login_hint")
        return FORM.format(title=escape(f"Электронный журнал, регион {name}"), hidden=hidden,
                           hint=escape(args.get("login_hint", "")))

    @bp.post("/oauth/authorize")
    def authorize():
        form = request.form
        if form.get("client_id") != region.client_id:
            return jsonify(error="invalid_client"), 400
        login = form.get("login", "")
        try:
            person = school.user(login)
        except KeyError:
            person = None
        if person is None or not same_secret(form.get("password", ""), school.password(login)):
            return jsonify(error="access_denied", error_description="Wrong login or password"), 401
        code = secrets.token_urlsafe(24)
        with region.lock:
            region.codes[code] = {"person": login, "redirect_uri": form["redirect_uri"],
                                  "challenge": form["code_challenge"], "expires": time.time() + 120}
        return redirect(f"{form['redirect_uri']}?{urlencode({'code': code, 'state': form.get('state', '')})}")

    @bp.post("/oauth/token")
    def token():
        form = request.form
        if (form.get("client_id"), form.get("client_secret")) != (region.client_id, region.client_secret):
            return jsonify(error="invalid_client"), 401
        with region.lock:
            grant = region.codes.pop(form.get("code", ""), None)  # a code is used once
        verifier = form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if grant is None or grant["expires"] < time.time() or grant["redirect_uri"] != form.get("redirect_uri") \
                or not same_secret(challenge, grant["challenge"]):
            return jsonify(error="invalid_grant"), 400
        access = secrets.token_urlsafe(24)
        region.tokens[access] = grant["person"]
        return jsonify(access_token=access, token_type="Bearer", expires_in=3600)

    @bp.get("/api/v1/me")
    def me():
        return jsonify(person_from_bearer())

    @bp.get("/ims/oneroster/v1p1/<collection>")
    def roster(collection: str):
        check_client()
        data = {"orgs": [school.org], "classes": school.classes, "users": school.users,
                "enrollments": school.enrollments, "lessons": school.lessons}.get(collection)
        if data is None:
            abort(404)
        limit = min(int(request.args.get("limit", 100)), 1000)
        offset = int(request.args.get("offset", 0))
        return jsonify({collection: data[offset:offset + limit], "total": len(data)})

    @bp.get("/connect")
    def connect():
        """"Connect the messenger" on the journal's site: off to the platform, which starts the link (EJ-1)."""
        if not region.platform.get("link_url"):
            return jsonify(error="not_configured"), 409
        query = {"provider_id": region.platform["provider_id"]}
        if request.args.get("person"):
            query["login_hint"] = request.args["person"]
        return redirect(f"{region.platform['link_url']}?{urlencode(query)}")

    @bp.put("/admin/platform")
    def configure():
        """Where this journal's webhooks go and with which secret (what an operator gives the region)."""
        body = request.get_json(force=True)
        region.platform = {k: body[k] for k in ("provider_id", "webhook_url", "webhook_secret")}
        region.platform["link_url"] = body.get("link_url", "")
        return jsonify(ok=True)

    @bp.post("/admin/push")
    def push():
        """Push the whole school (roster, then the week's timetable) in the background."""
        if not region.platform.get("webhook_url"):
            return jsonify(error="not_configured"), 409
        sender = WebhookSender(region.platform["webhook_url"], region.platform["webhook_secret"])
        thread = threading.Thread(target=sender.push_school, args=(school,), daemon=True)
        thread.start()
        return jsonify(classes=len(school.classes), users=len(school.users), lessons=len(school.lessons)), 202

    return bp


def create_app(regions: list[str], seed: int = 1, client_secret: str = "sim-client-secret", **sizes) -> Flask:
    app = Flask("ejournal_sim")
    app.json.ensure_ascii = False
    app.extensions["regions"] = {}
    for name in regions:
        region = Region(build_school(name, seed, **sizes), f"sfera-{name}", client_secret)
        app.extensions["regions"][name] = region
        app.register_blueprint(region_blueprint(name, region))

    @app.get("/healthz")
    def healthz():
        return jsonify(status="ok", regions=list(app.extensions["regions"]))

    return app
