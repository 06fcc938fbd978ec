"""The bridge's HTTP client of a regional e-journal: the OAuth 2 token endpoint
(authorization code + PKCE, client secret in the body) and the signed-in person."""

from __future__ import annotations

import requests

from ejournal_bridge.domain import Provider
from shared.config import env_int
from shared.errors import Invalid, Unavailable


class HttpJournalClient:
    def __init__(self, timeout: float | None = None):
        self.timeout = timeout or env_int("SFERA_EJOURNAL_TIMEOUT", 10)
        self.session = requests.Session()

    def _call(self, method: str, url: str, **kwargs) -> dict:
        try:
            response = self.session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            raise Unavailable("ejournal.unavailable", "The e-journal is not answering; try again later.",
                              {"reason": type(exc).__name__}) from None
        if response.status_code in (400, 401, 403):
            raise Invalid("link.code_rejected", "The e-journal did not accept this sign-in; start again.",
                          {"status": response.status_code})
        if response.status_code >= 300:
            raise Unavailable("ejournal.unavailable", "The e-journal answered with an error; try again later.",
                              {"status": response.status_code})
        try:
            return response.json()
        except ValueError:
            raise Unavailable("ejournal.unavailable", "The e-journal's answer was not JSON.") from None

    def exchange_code(self, provider: Provider, code: str, redirect_uri: str, code_verifier: str,
                      client_secret: str) -> str:
        token = self._call("POST", f"{provider.base_url}/oauth/token", data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
            "client_id": provider.client_id, "client_secret": client_secret,
            "code_verifier": code_verifier})
        if not isinstance(token.get("access_token"), str):
            raise Unavailable("ejournal.unavailable", "The e-journal's token answer had no access token.")
        return token["access_token"]

    def me(self, provider: Provider, access_token: str) -> dict:
        person = self._call("GET", f"{provider.base_url}/api/v1/me",
                            headers={"Authorization": f"Bearer {access_token}"})
        if not isinstance(person.get("sourcedId"), str) or person.get("role") not in (
                "student", "teacher", "parent", "guardian", "administrator"):
            raise Unavailable("ejournal.unavailable", "The e-journal did not say who signed in.")
        return person
