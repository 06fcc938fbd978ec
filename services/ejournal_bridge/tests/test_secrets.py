"""E-journal secrets at rest (issue #12): webhook and OAuth client secrets are sealed with
the platform's keys (SFERA_SECRETS_KEYS, newest first) before they enter an event;
re-sealing with the newest key lets an old key be removed."""

from __future__ import annotations

import base64
import secrets
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from ejournal_bridge.application import BridgeApplication
from ejournal_bridge.domain import signature
from shared.contracts.api.ejournal_bridge import RegisterProvider
from shared.secretbox import SecretBox, SecretUnreadable
from shared.store import make_application
from tools.ejournal_sim.fixture import build_school
from tools.ejournal_sim.webhooks import WebhookSender

pytestmark = pytest.mark.integration

CLIENT_SECRET = "oauth-client-secret-" + "x7Q" * 8
ORG = build_school("16", classes=1, students=2, teachers=1).org


def new_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


class Journal:
    """Keeps the client secret the bridge sends to the token endpoint."""

    def __init__(self):
        self.client_secrets: list[str] = []

    def exchange_code(self, provider, code, redirect_uri, code_verifier, client_secret):
        self.client_secrets.append(client_secret)
        return "token"

    def me(self, provider, access_token):
        return {"sourcedId": "t-1", "role": "teacher", "givenName": "Анна", "familyName": "Петрова"}


def bridge(config, journal=None) -> BridgeApplication:
    return make_application(BridgeApplication, "ejournal_bridge", create_table=True, config=config,
                            journal=journal or Journal())


def webhook(app: BridgeApplication, provider_id: uuid.UUID, secret: str, event_id: str | None = None):
    body = WebhookSender("unused", secret).body("orgs.upserted", [ORG], event_id)
    now = datetime.now(timezone.utc)
    ts = str(int(now.timestamp()))
    return app.receive_webhook(provider_id, ts, signature(secret, ts, body), body, now=now)


def restarted(app: BridgeApplication, config) -> BridgeApplication:
    """The bridge after a restart with today's SFERA_SECRETS_KEYS (the memory store keeps its app)."""
    if config.persistence == "memory":
        app.box = SecretBox.from_settings()
        return app
    return bridge(config)


def raw_events(app: BridgeApplication) -> bytes:
    """Every stored event's state as the recorder keeps it."""
    return b"\n".join(n.state for n in app.recorder.select_notifications(start=1, limit=100_000))


def test_secrets_never_reach_the_store_in_clear(store_settings, monkeypatch):
    monkeypatch.setenv("SFERA_SECRETS_KEYS", new_key())
    app = bridge(store_settings)
    provider, first = app.register_provider(RegisterProvider("16", "Электронная школа", "https://journal.test",
                                                             "client-id", CLIENT_SECRET))
    second = app.rotate_secret(provider.id, timedelta(days=1))
    webhook(app, provider.id, first)
    webhook(app, provider.id, second)
    stored = raw_events(app)
    assert "Электронная школа".encode() in stored or b"\\u042d" in stored  # the recorder is read in clear
    for secret in (CLIENT_SECRET, first, second):
        assert secret.encode() not in stored
    if store_settings.persistence == "sqlite":
        files = b"".join(p.read_bytes() for p in Path(store_settings.var_dir).rglob("*") if p.is_file())
        assert b"client-id" in files
        for secret in (CLIENT_SECRET, first, second):
            assert secret.encode() not in files


def test_the_client_secret_reaches_the_journal_in_clear(store_settings, monkeypatch):
    monkeypatch.setenv("SFERA_SECRETS_KEYS", new_key())
    journal = Journal()
    app = bridge(store_settings, journal)
    provider, _ = app.register_provider(RegisterProvider("16", "ЭШ", "https://journal.test",
                                                         "client-id", CLIENT_SECRET))
    user = uuid.uuid4()
    _, url = app.start_link(user, provider.id, "https://platform.test/cb")
    state = dict(p.split("=", 1) for p in url.split("?", 1)[1].split("&"))["state"]
    app.finish_link(user, state, "code", "https://platform.test/cb")
    assert journal.client_secrets == [CLIENT_SECRET]


def test_rotating_keys_keeps_webhooks_verifying_and_the_old_key_can_go(store_settings, monkeypatch):
    old, new = new_key(), new_key()
    monkeypatch.setenv("SFERA_SECRETS_KEYS", old)
    app = bridge(store_settings)
    provider, secret = app.register_provider(RegisterProvider("77", "МЭШ", "https://journal.test",
                                                              "client-id", CLIENT_SECRET))
    webhook(app, provider.id, secret)

    monkeypatch.setenv("SFERA_SECRETS_KEYS", f"{new},{old}")  # the new key first; the old one still opens
    app = restarted(app, store_settings)
    webhook(app, provider.id, secret)
    assert app.reseal_secrets() == 1  # every provider's secrets sealed again with the new key
    assert app.reseal_secrets() == 0  # nothing left to do
    webhook(app, provider.id, secret)

    monkeypatch.setenv("SFERA_SECRETS_KEYS", new)  # the old key removed
    app = restarted(app, store_settings)
    _, duplicate = webhook(app, provider.id, secret)
    assert duplicate is False
    assert app.open_client_secret(app.provider(provider.id)) == CLIENT_SECRET


def test_without_the_key_that_sealed_them_secrets_are_refused_not_guessed(store_settings, monkeypatch):
    monkeypatch.setenv("SFERA_SECRETS_KEYS", new_key())
    app = bridge(store_settings)
    provider, secret = app.register_provider(RegisterProvider("77", "МЭШ", "https://journal.test",
                                                              "client-id", CLIENT_SECRET))
    monkeypatch.setenv("SFERA_SECRETS_KEYS", new_key())  # the old key dropped before re-sealing
    app = restarted(app, store_settings)
    with pytest.raises(SecretUnreadable) as refused:
        webhook(app, provider.id, secret)
    assert "SFERA_SECRETS_KEYS" in str(refused.value)


def test_secrets_stored_in_clear_before_sealing_existed_are_sealed_by_a_reseal(store_settings, monkeypatch):
    monkeypatch.setenv("SFERA_SECRETS_KEYS", new_key())
    app = bridge(store_settings)
    provider, secret = app.register_provider(RegisterProvider("16", "ЭШ", "https://journal.test",
                                                              "client-id", CLIENT_SECRET))
    legacy = app.provider(provider.id)
    legacy._resealed(CLIENT_SECRET, [{**s, "secret": secret} for s in legacy.secrets])  # as stored before
    app.save(legacy)
    webhook(app, provider.id, secret)  # still verifies
    assert app.reseal_secrets() == 1
    resealed = app.provider(provider.id)
    assert resealed.client_secret != CLIENT_SECRET and all(s["secret"] != secret for s in resealed.secrets)
    webhook(app, provider.id, secret)


def test_the_operator_console_reseals_with_the_newest_key(tmp_path, monkeypatch):
    import os
    import subprocess
    import sys

    from shared.config import REPO_ROOT, settings

    old, new = new_key(), new_key()
    env = {"SFERA_VAR_DIR": str(tmp_path / "var"), "PERSISTENCE": "sqlite", "SFERA_SECRETS_KEYS": old}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    config = settings(env)
    app = bridge(config)
    provider, secret = app.register_provider(RegisterProvider("16", "ЭШ", "https://journal.test",
                                                              "client-id", CLIENT_SECRET))
    console = [sys.executable, "-m", "ejournal_bridge.sealing", "reseal"]
    done = subprocess.run(console, env={**os.environ, "SFERA_SECRETS_KEYS": f"{new},{old}"}, cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "1 e-journal(s)" in done.stdout, done.stderr
    monkeypatch.setenv("SFERA_SECRETS_KEYS", new)
    webhook(bridge(config), provider.id, secret)
