"""The realtime fan-out's plumbing: its queue's bindings come from the event catalogue, and every writer to a
socket holds that socket's one send lock."""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import datetime, timezone
from types import SimpleNamespace

import pytest

from gateway.realtime import CALL_PRESENCE, PUSHED, SESSION_ENDED, BroadcastConsumer, Hub
from shared.contracts import get_contract, make_event

pytestmark = pytest.mark.unit


class Channel:
    def __init__(self):
        self.exchanges, self.bindings = set(), set()

    def queue_declare(self, queue, **kwargs):
        return SimpleNamespace(method=SimpleNamespace(queue="amq.gen-1"))

    def exchange_declare(self, exchange, **kwargs):
        self.exchanges.add(exchange)

    def queue_bind(self, queue, exchange, routing_key):
        assert exchange in self.exchanges and queue == "amq.gen-1"
        self.bindings.add((exchange, routing_key))


def test_the_queue_is_bound_to_each_pushed_events_exchange_from_the_catalogue():
    channel = Channel()
    BroadcastConsumer.bind(channel)
    assert channel.exchanges == {"messaging.events", "identity.events", "calls.events"}
    contracts = [get_contract(t) for t in (*PUSHED, *CALL_PRESENCE, SESSION_ENDED)]
    assert channel.bindings == {(c.exchange, c.routing_key) for c in contracts}
    assert ("messaging.events", "MessagePosted.v1") in channel.bindings
    assert ("identity.events", "SessionEnded.v1") in channel.bindings
    assert ("calls.events", "WhiteboardChanged.v1") in channel.bindings
    assert ("calls.events", "ParticipantLeft.v1") in channel.bindings


class Socket:
    def __init__(self):
        self.sent = []

    def send(self, payload):
        self.sent.append(payload)

    def close(self, **kwargs):
        self.sent.append("closed")


class OneMember:
    def call(self, service, method, **kwargs):
        return {"members": ["u1"], "concealed": []}


def test_a_push_waits_for_the_lock_the_socket_handler_holds():
    hub = Hub(OneMember())
    ws = Socket()
    send_lock = hub.connect("u1", ws, "s1")
    assert hub.send_locks[id(ws)] is send_lock
    with send_lock:  # the handler is writing (a pong, a close)
        pusher = threading.Thread(target=hub.deliver, args=("MessagePosted.v1", {"chat_id": "c", "seq": 1}))
        pusher.start()
        time.sleep(0.2)
        assert ws.sent == []
    pusher.join(5)
    assert len(ws.sent) == 1
    with send_lock:
        ender = threading.Thread(target=hub.end_session, args=("s1",))
        ender.start()
        time.sleep(0.2)
        assert ws.sent[-1] != "closed"
    ender.join(5)
    assert ws.sent[-1] == "closed"


class InCall:
    """calls' answer to who is in a call, changing as people join and leave."""

    def __init__(self, members):
        self.members, self.asked = list(members), 0

    def call(self, service, method, **kwargs):
        assert (service, method) == ("calls", "board_audience") and kwargs == {"call_id": CALL}
        self.asked += 1
        return {"members": list(self.members), "concealed": []}


CALL = str(uuid.uuid4())


def change(by: str, revision: int) -> dict:
    return {"call_id": CALL, "action": "drawn", "revision": revision, "by": by, "stroke": {"points": [1, 2]}}


def test_a_whiteboards_changes_go_to_the_people_in_the_call_only_CA_3():
    calls = InCall(["u1", "u2"])
    hub = Hub(calls)
    sockets = {user: Socket() for user in ("u1", "u2", "u3")}
    for user, ws in sockets.items():
        hub.connect(user, ws, f"s-{user}")
    assert hub.deliver("WhiteboardChanged.v1", change("u1", 1)) == 2
    assert hub.deliver("WhiteboardChanged.v1", change("u2", 2)) == 2 and calls.asked == 1  # cached
    assert [json.loads(p)["data"]["revision"] for p in sockets["u2"].sent] == [1, 2] and sockets["u3"].sent == []
    assert json.loads(sockets["u1"].sent[0])["type"] == "WhiteboardChanged"

    calls.members = ["u1", "u2", "u3"]  # u3 joined and draws before the gateway heard of it: asked again
    assert hub.deliver("WhiteboardChanged.v1", change("u3", 3)) == 3 and calls.asked == 2
    calls.members = ["u1", "u3"]  # u2 left: calls' ParticipantLeft drops the cache
    BroadcastConsumer("amqp://", hub).on_message(None, None, None, json.dumps(make_event(
        "calls.ParticipantLeft.v1", {"call_id": CALL, "user_id": uuid.uuid4(), "reason": "left",
                                     "left_at": datetime.now(timezone.utc)}, event_id="calls:1").to_dict(),
        default=str).encode())
    assert hub.deliver("WhiteboardChanged.v1", change("u1", 4)) == 2 and calls.asked == 3
    assert len(sockets["u2"].sent) == 3


@pytest.mark.parametrize("event_type", PUSHED)
def test_a_pushed_events_data_is_what_the_wire_carried(event_type):
    """event_data (dumped field by field, shared/contracts/loading.py) gives the data as the producer sent it."""
    from marshmallow import fields

    from gateway.realtime import event_data
    from shared.contracts import parse_event

    schema = get_contract(event_type).data_schema()
    samples = {fields.UUID: uuid.uuid4(), fields.DateTime: datetime(2026, 9, 1, 8, 30, tzinfo=timezone.utc),
               fields.Integer: 3, fields.Boolean: True, fields.String: "a@b.ru", fields.List: []}
    def sample(f):
        choices = [v.choices for v in f.validators if hasattr(v, "choices")]
        return list(choices[0])[0] if choices else next(v for kind, v in samples.items() if isinstance(f, kind))

    data = {name: sample(f) for name, f in schema.load_fields.items() if f.required}
    if "starts_at" in data and "ends_at" in data:
        data["ends_at"] = datetime(2026, 9, 1, 9, 15, tzinfo=timezone.utc)
    sent = make_event(event_type, data, event_id="x")
    assert event_data(parse_event(sent.to_json())) == json.loads(sent.to_json())["data"]
