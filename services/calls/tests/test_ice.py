"""Clients get the STUN/TURN servers (SFERA_SFU_ICE_SERVERS) in the join answer,
with TURN credentials: static, or time-limited by the TURN REST API (SFERA_TURN_SECRET)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from unittest import mock

import pytest
from nameko.testing.services import worker_factory

from calls.application import CallsApplication
from calls.nodes import NodeRegistry
from calls.service import CallsService
from shared.config import settings
from shared.contracts.api.calls import StartCall
from shared.ice import ice_servers
from shared.store import make_application

pytestmark = pytest.mark.unit


def test_none_configured_none_sent():
    assert ice_servers("u1", {}) == []


def test_static_turn_account_and_stun():
    env = {"SFERA_SFU_ICE_SERVERS": "stun:stun.example.org:3478, turn:turn.example.org:3478?transport=udp",
           "SFERA_TURN_USERNAME": "sfera", "SFERA_TURN_PASSWORD": "pw"}
    assert ice_servers("u1", env) == [
        {"urls": ["stun:stun.example.org:3478"]},
        {"urls": ["turn:turn.example.org:3478?transport=udp"], "username": "sfera", "credential": "pw"}]


def test_turn_rest_api_credentials_expire_and_name_the_user():
    env = {"SFERA_SFU_ICE_SERVERS": "turn:t:3478", "SFERA_TURN_SECRET": "s3cret", "SFERA_TURN_TTL": "600"}
    (server,) = ice_servers("user-7", env, now=1_800_000_000)
    assert server["username"] == "1800000600:user-7"
    expected = base64.b64encode(hmac.new(b"s3cret", b"1800000600:user-7", hashlib.sha1).digest()).decode()
    assert server["credential"] == expected


def test_the_join_answer_carries_the_configured_servers(monkeypatch):
    """The answer used to have no ICE servers at all (and the SFU's `joined` sent [])."""
    monkeypatch.setenv("SFERA_SFU_ICE_SERVERS", "turn:127.0.0.1:3478")
    monkeypatch.setenv("SFERA_TURN_SECRET", "s3cret")
    app = make_application(CallsApplication, "calls", config=settings({"PERSISTENCE": "memory"}))
    members = [str(uuid.uuid4()) for _ in range(2)]
    call = app.start_call(uuid.UUID(members[0]), StartCall(uuid.uuid4(), title="Урок"), members)
    service = worker_factory(CallsService, app=app, nodes=NodeRegistry(),
                             messaging=mock.Mock(members_of=mock.Mock(return_value=members)))
    answer = service.join(members[1], str(call.id))
    (server,) = answer["ice_servers"]
    assert server["urls"] == ["turn:127.0.0.1:3478"] and server["username"].endswith(f":{members[1]}")
