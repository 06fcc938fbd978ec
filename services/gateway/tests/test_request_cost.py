"""Work a request does not repeat (issue #17, the gateway's CPU per chat post, bench.gateway_post): what costs the
same for every request is made once per process."""

from __future__ import annotations

import threading
import uuid

import pytest
from marshmallow import Schema

from .conftest import bearer

pytestmark = pytest.mark.unit


def test_no_schema_is_made_per_request_once_the_route_has_run(client, rpc, monkeypatch):
    """Making a schema deep-copies its declared fields: more CPU than its load and dump of a chat message."""
    rpc.answers[("messaging", "post")] = lambda **kwargs: {"chat_id": kwargs["chat_id"], "seq": 1}
    chat, headers = uuid.uuid4(), bearer()
    body = {"text": "hello", "reply_to": None}
    assert client.post(f"/api/v1/chats/{chat}/messages", json=body, headers=headers).status_code == 201
    made = []
    init = Schema.__init__

    def counting(self, *args, **kwargs):
        made.append(type(self).__name__)
        init(self, *args, **kwargs)

    monkeypatch.setattr(Schema, "__init__", counting)
    for _ in range(3):
        assert client.post(f"/api/v1/chats/{chat}/messages", json=body, headers=headers).status_code == 201
    assert made == []
    sent = [kwargs["message"] for service, method, _, kwargs in rpc.calls if method == "post"]
    assert len(sent) == 4 and all(m["text"] == "hello" for m in sent)


def test_requests_on_many_threads_share_a_schema_and_each_gets_its_own_answer(app, rpc):
    """The shared instance keeps nothing of one request for another (16 threads, as gunicorn's run them)."""
    rpc.answers[("messaging", "post")] = lambda **kwargs: {"chat_id": kwargs["chat_id"], "seq": 1,
                                                           "text": kwargs["message"]["text"]}
    chat, headers = uuid.uuid4(), bearer()
    wrong: list = []

    def poster(n: int) -> None:
        client = app.test_client()
        for i in range(25):
            text = f"{n}-{i}"
            answer = client.post(f"/api/v1/chats/{chat}/messages", json={"text": text}, headers=headers)
            if answer.status_code != 201 or answer.get_json()["text"] != text:
                wrong.append((text, answer.status_code, answer.get_data(as_text=True)))
            refused = client.post(f"/api/v1/chats/{chat}/messages", json={"text": 7}, headers=headers)
            if refused.status_code != 400 or "text" not in refused.get_json()["error"]["details"]["fields"]:
                wrong.append((text, refused.status_code, refused.get_data(as_text=True)))

    threads = [threading.Thread(target=poster, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []


def test_gunicorn_writes_no_access_log_line_of_its_own(tmp_path):
    """The gateway logs each request itself (a JSON line: request id, route, status, ms); gunicorn's access line
    repeated it, with the raw query (a realtime socket's access_token on the gthread server), at 0.24 ms of the
    worker's CPU a request (in turns, same run). Devstack's command is the image's and the Deployment's
    (tests/deploy)."""
    from gunicorn.config import Config

    from gateway import gunicorn_conf
    from tools.devstack.stack import Stack, StackConfig

    stack = Stack(StackConfig(var_dir=tmp_path))
    stack._spawn = lambda managed: managed
    argv = stack.start_gunicorn("gateway", 8080).argv
    parsed = Config().parser().parse_args(argv[1:])
    assert parsed.accesslog is None and getattr(gunicorn_conf, "accesslog", None) is None
