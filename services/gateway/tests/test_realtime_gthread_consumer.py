"""The gthread gateway's broadcast consumer starts with its first socket, not with the process: behind the asyncio
server (``make run``) or beside the realtime Deployment (Kubernetes) no socket ever opens on it, and it received,
parsed and dumped every event for nobody (bench.gateway_post: its CPU a chat message). Over a real socket
(werkzeug's threaded server, flask-sock) and the real broker."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import datetime, timezone

import pytest
import simple_websocket
from flask import Flask
from werkzeug.serving import make_server

from gateway import realtime
from shared.auth import issue_access_token
from shared.contracts import make_event
from tests.helpers import WebSocketClient
from tests.helpers import publish_event as publish
from tools.devstack.infra import free_port

CHAT = str(uuid.uuid4())
PUPIL = str(uuid.uuid4())


class Rpc:
    def call(self, service, method, **kwargs):
        if (service, method) == ("identity", "session_is_active"):
            return True
        assert (service, method) == ("messaging", "audience") and kwargs == {"chat_id": CHAT}
        return {"members": [PUPIL]}


def posted(text: str):
    return make_event("messaging.MessagePosted.v1", {
        "chat_id": CHAT, "message_id": uuid.uuid4(), "seq": 1, "author_id": PUPIL, "text": text,
        "posted_at": datetime.now(timezone.utc)}, event_id=f"test:{uuid.uuid4().hex}")


def serving(app: Flask):
    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def socket_url(server) -> str:
    access_token = issue_access_token(uuid.UUID(PUPIL), str(uuid.uuid4())).token
    return f"ws://127.0.0.1:{server.server_port}/api/v1/realtime?access_token={access_token}"


@pytest.mark.integration
def test_no_events_are_consumed_until_a_socket_opens_and_none_is_missed_after_its_ready(rabbitmq):
    app = Flask(__name__)
    before = set(threading.enumerate())
    realtime.install(app, rabbitmq.amqp_uri, Rpc())
    # a gateway with no socket: no consumer, no queue of its own on the broker
    assert "realtime_consumer" not in app.extensions
    assert not [t for t in set(threading.enumerate()) - before if t.name == "realtime-consumer"]
    server = serving(app)
    ws = WebSocketClient.connect(socket_url(server))
    try:
        assert json.loads(ws.receive(10))["type"] == "ready"
        consumer = app.extensions["realtime_consumer"]
        assert consumer.ready.is_set()  # bound before the socket was told it is ready
        publish(rabbitmq.amqp_uri, posted("right after ready"))
        frame = json.loads(ws.receive(10))
        assert frame["type"] == "MessagePosted" and frame["data"]["text"] == "right after ready"
        second = WebSocketClient.connect(socket_url(server))  # the next socket: the same consumer
        assert json.loads(second.receive(10))["type"] == "ready"
        assert app.extensions["realtime_consumer"] is consumer
        second.close()
    finally:
        ws.close()
        server.shutdown()
        if "realtime_consumer" in app.extensions:  # (else it reconnects, and logs so, after the broker is gone)
            app.extensions["realtime_consumer"].stop()


class Unreachable(realtime.BroadcastConsumer):
    """A consumer that never reaches its broker (the real one would retry every second for the rest of the run)."""

    def run(self) -> None:
        return None


@pytest.mark.integration
def test_a_socket_is_refused_with_try_again_later_while_the_broker_is_unreachable(monkeypatch):
    monkeypatch.setattr(realtime, "CONSUMER_WAIT", 0.5)
    monkeypatch.setattr(realtime, "BroadcastConsumer", Unreachable)
    app = Flask(__name__)
    realtime.install(app, "amqp://guest:guest@127.0.0.1:1/%2F", Rpc())
    server = serving(app)
    ws = WebSocketClient.connect(socket_url(server))
    try:
        with pytest.raises(simple_websocket.ConnectionClosed):
            ws.receive(10)
        assert ws.close_reason == 1013 and ws.close_message == "realtime.unavailable"
    finally:
        server.shutdown()
