"""Realtime through the gateway's WebSocket: members of a chat receive its new
messages, edits and deletions within milliseconds; others receive nothing; a
reconnecting client catches up from its last seq (CH-4)."""

from __future__ import annotations

import json
import time

import pytest

from tests.e2e.test_messaging import pupils_class_chat
from tests.helpers import WebSocketClient

pytestmark = pytest.mark.e2e


def connect(platform, session, base_url: str | None = None):
    base = base_url or platform.gateway_url
    url = base.replace("http://", "ws://") + f"/api/v1/realtime?access_token={session['access_token']}"
    ws = WebSocketClient.connect(url)
    assert json.loads(ws.receive(timeout=5))["type"] == "ready"
    return ws


def next_event(ws, kind: str, timeout: float = 5) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        raw = ws.receive(timeout=max(0.01, deadline - time.monotonic()))
        if raw is None:
            continue
        message = json.loads(raw)
        if message["type"] == kind:
            return message["data"]
    raise AssertionError(f"no {kind} within {timeout}s")


def test_members_receive_messages_live_and_outsiders_do_not_CH_4(api, platform, klass):
    a, b = klass["pupils"]
    chat = pupils_class_chat(api, klass)
    listener, outsider_ws = connect(platform, b), connect(platform, api.sign_in())
    sent_at = time.monotonic()
    posted = api.ok("POST", f"/chats/{chat['chat_id']}/messages", a["access_token"], status=201,
                    json={"text": "Живое сообщение"})
    live = next_event(listener, "MessagePosted")
    assert (live["seq"], live["text"], live["chat_id"]) == (posted["seq"], "Живое сообщение", chat["chat_id"])
    assert time.monotonic() - sent_at < 2
    api.ok("PUT", f"/chats/{chat['chat_id']}/messages/{posted['seq']}", a["access_token"], json={"text": "Правка"})
    assert next_event(listener, "MessageEdited")["text"] == "Правка"
    api.ok("DELETE", f"/chats/{chat['chat_id']}/messages/{posted['seq']}", a["access_token"])
    assert next_event(listener, "MessageDeleted")["seq"] == posted["seq"]
    assert outsider_ws.receive(timeout=0.5) is None
    listener.close()

    # Offline: messages keep coming; on reconnect the client catches up from its last seq.
    for n in range(3):
        api.ok("POST", f"/chats/{chat['chat_id']}/messages", a["access_token"], status=201, json={"text": f"o{n}"})
    missed = api.ok("GET", f"/chats/{chat['chat_id']}/messages?after={posted['seq']}", b["access_token"])["items"]
    assert [m["text"] for m in missed] == ["o0", "o1", "o2"]
    outsider_ws.close()


def test_a_socket_with_a_bad_token_is_refused(platform):
    url = platform.gateway_url.replace("http://", "ws://") + "/api/v1/realtime?access_token=nonsense"
    ws = WebSocketClient.connect(url)
    message = json.loads(ws.receive(timeout=5))
    assert message["type"] == "error" and message["error"]["code"] == "auth.invalid_token"
