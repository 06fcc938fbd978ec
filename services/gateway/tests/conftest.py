"""The gateway's unit tests: the Flask app with its RPC pool replaced by a fake (``rpc``; a test file overrides the
fixture to answer its own calls), its test client (``client``) and a signed-in caller's header (``bearer``)."""

from __future__ import annotations

import uuid

import pytest

from gateway.app import create_app
from shared.auth import issue_access_token

_NO_DEFAULT = object()


class FakeRpc:
    """Answers RPCs from ``answers[(service, method)]`` (a value, an exception to
    raise, or a function of the call's keyword arguments) and records each call
    as ``(service, method, request_id, kwargs)``."""

    def __init__(self, default=_NO_DEFAULT):
        self.calls = []
        self.answers = {}
        self.default = default

    def call(self, service, method, *, request_id=None, **kwargs):
        self.calls.append((service, method, request_id, kwargs))
        if (service, method) in self.answers or self.default is _NO_DEFAULT:
            answer = self.answers[(service, method)]
        else:
            answer = self.default
        if isinstance(answer, BaseException):
            raise answer
        return answer(**kwargs) if callable(answer) else answer


@pytest.fixture
def rpc() -> FakeRpc:
    return FakeRpc()


@pytest.fixture
def app(rpc, monkeypatch, tmp_path):
    monkeypatch.setenv("SFERA_VAR_DIR", str(tmp_path))  # whatever the app writes goes under the test's directory
    return create_app(rpc=rpc)


@pytest.fixture
def client(app):
    return app.test_client()


def bearer(user_id: uuid.UUID | None = None, session_id: str = "s-1") -> dict:
    """The Authorization header of a signed-in person (a new one unless ``user_id``)."""
    return {"Authorization": f"Bearer {issue_access_token(user_id or uuid.uuid4(), session_id).token}"}
