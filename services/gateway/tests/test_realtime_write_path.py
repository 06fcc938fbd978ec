"""The asyncio realtime server's write path (issue #17): an event is serialised once and its frame's bytes written
to each socket's transport directly, in order; a client that does not read is bounded by ``buffer_limit`` unsent
bytes and then closed (its close after what it was sent), never holding up the others."""

from __future__ import annotations

import asyncio
import json
import time
from types import SimpleNamespace

import pytest
from wsproto.frame_protocol import FrameProtocol, Opcode

import gateway.realtime as realtime
import gateway.realtime_server as server
from gateway.realtime_server import TOO_SLOW, AsyncHub, Connection, websocket_frame

pytestmark = pytest.mark.unit

CHAT = "c1"
MEMBERS = [f"u{n}" for n in range(40)]


class Rpc:
    def __init__(self, concealed=()):
        self.concealed = list(concealed)

    def call(self, service, method, **kwargs):
        return {"members": MEMBERS, "concealed": self.concealed}


class Transport:
    """A transport whose client reads ``reads`` bytes of each write at once and keeps the rest unsent."""

    def __init__(self, reads: int | None = None):
        self.reads, self.unsent, self.written, self.aborted = reads, 0, bytearray(), False

    def write(self, data: bytes) -> None:
        self.written += data
        if self.reads is not None:
            self.unsent += max(0, len(data) - self.reads)

    def get_write_buffer_size(self) -> int:
        return self.unsent

    def is_closing(self) -> bool:
        return self.aborted

    def abort(self) -> None:
        self.aborted = True


class WebSocket:
    def __init__(self, transport: Transport):
        self.transport, self.closed, self.closes = transport, False, []

    async def send_str(self, text: str) -> None:
        self.transport.write(websocket_frame(text))

    async def close(self, code: int, message: bytes) -> None:
        self.closes.append((code, message))
        self.transport.write(bytes((0x88, 2 + len(message))) + code.to_bytes(2, "big") + message)
        self.closed = True


def frames(data: bytes) -> list[tuple[int, object]]:
    """What a client reads from ``data`` (wsproto's frame reader, simple_websocket's): (opcode, payload) in order;
    a close's payload is its code."""
    reader = FrameProtocol(client=True, extensions=[])
    reader.receive_bytes(bytes(data))
    out = []
    for frame in reader.received_frames():
        assert frame.frame_finished and frame.message_finished
        out.append((int(frame.opcode), frame.payload[0] if frame.opcode == Opcode.CLOSE else frame.payload))
    return out


def hub_with(rpc, transports: dict[str, list[Transport]], **options) -> tuple[AsyncHub, dict[Transport, Connection]]:
    loop = asyncio.get_running_loop()
    hub = AsyncHub(rpc, loop, **options)
    conns = {}
    for user, owned in transports.items():
        for n, transport in enumerate(owned):
            conn = Connection(hub, WebSocket(transport), SimpleNamespace(transport=transport), user, f"{user}-s{n}")
            hub.connect(conn)
            conns[transport] = conn
    return hub, conns


def posted(seq: int, text: str = "hi") -> dict:
    return {"chat_id": CHAT, "message_id": f"m{seq}", "seq": seq, "author_id": "u0", "text": text,
            "posted_at": "2026-11-30T00:00:00+00:00"}


def test_a_frame_is_what_a_websocket_client_reads_at_every_length_class():
    for size in (0, 125, 126, 65535, 65536, 70000):
        text = "я" * (size // 2) + "x" * (size % 2)
        assert frames(websocket_frame(text)) == [(Opcode.TEXT, text)]


def test_each_event_is_serialised_once_and_the_same_bytes_go_to_every_socket(monkeypatch):
    counted = {"frames": 0, "dumps": 0}
    built, dumps = server.websocket_frame, realtime.json.dumps

    def counting_frame(text):
        counted["frames"] += 1
        return built(text)

    def counting_dumps(*args, **kwargs):
        counted["dumps"] += 1
        return dumps(*args, **kwargs)

    monkeypatch.setattr(server, "websocket_frame", counting_frame)
    monkeypatch.setattr(realtime, "json", SimpleNamespace(dumps=counting_dumps))

    async def scenario():
        transports = {user: [Transport(), Transport()] for user in MEMBERS}  # each member on two devices
        hub, _ = hub_with(Rpc(), transports)
        assert await hub.deliver("MessagePosted.v1", posted(1)) == 80
        assert counted == {"frames": 1, "dumps": 1}
        sent = {bytes(t.written) for owned in transports.values() for t in owned}
        assert len(sent) == 1
        assert json.loads(frames(sent.pop())[0][1]) == {"type": "MessagePosted", "data": posted(1)}

        # CH-5: a concealed member makes two versions: two serialisations, whatever the sockets
        counted.update(frames=0, dumps=0)
        hub.audiences = realtime.Audiences(Rpc(concealed=["u1"]))
        read = {"chat_id": CHAT, "user_id": "u1", "read_until": 1, "read_at": "2026-11-30T00:00:00+00:00"}
        assert await hub.deliver("MessagesRead.v1", read) == 80
        assert counted == {"frames": 2, "dumps": 2}

    asyncio.run(scenario())


def test_frames_reach_each_socket_in_the_order_the_events_came():
    async def scenario():
        transports = {user: [Transport(reads=7)] for user in MEMBERS}  # some of each frame stays unsent
        hub, _ = hub_with(Rpc(), transports, buffer_limit=1 << 20)
        for seq in range(1, 201):
            hub.handle_event(SimpleNamespace(type="messaging.MessagePosted.v1", data=posted(seq),
                                             contract=SimpleNamespace(routing_key="MessagePosted.v1")))
        runner = asyncio.create_task(hub.run())
        while not hub.events.empty():
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        runner.cancel()
        for owned in transports.values():
            seqs = [json.loads(data)["data"]["seq"] for _, data in frames(owned[0].written)]
            assert seqs == list(range(1, 201))

    def event_data(event):
        return event.data

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(server, "event_data", event_data)
        asyncio.run(scenario())


def test_a_client_that_does_not_read_is_held_to_the_bound_then_closed_after_what_it_was_sent():
    limit, text = 64 << 10, "x" * 4000

    async def scenario():
        stalled = Transport(reads=0)  # its client reads nothing
        transports = {user: [Transport()] for user in MEMBERS}
        transports["u7"] = [stalled]
        hub, conns = hub_with(Rpc(), transports, buffer_limit=limit, close_grace=0.2)
        for seq in range(1, 101):
            await hub.deliver("MessagePosted.v1", posted(seq, text))
            assert stalled.get_write_buffer_size() <= limit + len(websocket_frame(json.dumps(
                {"type": "MessagePosted", "data": posted(seq, text)})))
        assert hub.dropped == 1 and "u7" not in hub.sockets
        for user, owned in transports.items():
            if user != "u7":  # the others received every frame
                assert len(frames(owned[0].written)) == 100
        await asyncio.sleep(0)
        await conns[stalled].closer
        received = frames(stalled.written)
        assert received[-1] == (Opcode.CLOSE, TOO_SLOW)
        seqs = [json.loads(data)["data"]["seq"] for kind, data in received[:-1]]
        assert seqs == list(range(1, len(seqs) + 1)) and 0 < len(seqs) < 100
        await asyncio.sleep(0.3)
        assert not stalled.aborted  # closed in time (aborted only when the close does not finish in the grace)

    asyncio.run(scenario())


def arriving(event_type: str, data: dict) -> SimpleNamespace:
    return SimpleNamespace(type=f"messaging.{event_type}.v1", data=data,
                           contract=SimpleNamespace(routing_key=f"{event_type}.v1"))


def test_a_cold_audience_cache_asks_the_chats_at_once_and_a_change_of_members_is_never_missed_CH_5(monkeypatch):
    """Each chat's audience not cached is asked when its event arrives (several at once), not one chat after
    another behind each answer; an answer never outlives a change of the chat's members that arrived after it."""
    monkeypatch.setattr(server, "event_data", lambda event: event.data)
    chats = [f"c{n}" for n in range(6)]

    class SlowRpc:
        def __init__(self):
            self.removed, self.asked = set(), []

        def call(self, service, method, chat_id):
            self.asked.append(chat_id)
            members = [m for m in MEMBERS if m not in self.removed]
            time.sleep(0.3)
            return {"members": members, "concealed": []}

    async def scenario():
        rpc = SlowRpc()
        transports = {user: [Transport()] for user in MEMBERS}
        hub, _ = hub_with(rpc, transports)
        runner = asyncio.create_task(hub.run())
        started = time.monotonic()
        for n, chat in enumerate(chats):
            hub.handle_event(arriving("MessagePosted", {**posted(n), "chat_id": chat}))
        while not all(len(frames(t[0].written)) == len(chats) for t in transports.values()):
            await asyncio.sleep(0.02)
            assert time.monotonic() - started < 10
        assert time.monotonic() - started < 0.3 * len(chats) / 2  # asked together (one after another: 1.8 s)
        assert sorted(rpc.asked) == chats

        # u5 leaves c0 (committed, then published): what follows the change is not sent to u5
        hub.handle_event(arriving("MessagePosted", {**posted(10), "chat_id": "c0"}))  # cached: u5 still a member
        rpc.removed.add("u5")
        hub.handle_event(arriving("ChatMembersChanged", {"chat_id": "c0", "added": [], "removed": ["u5"]}))
        hub.handle_event(arriving("MessagePosted", {**posted(11), "chat_id": "c0"}))
        while len(frames(transports["u0"][0].written)) < len(chats) + 3:
            await asyncio.sleep(0.02)
            assert time.monotonic() - started < 10
        await asyncio.sleep(0.1)
        runner.cancel()
        seen = [json.loads(data) for _, data in frames(transports["u5"][0].written)[len(chats):]]
        assert [(m["type"], m["data"].get("seq")) for m in seen] == [("MessagePosted", 10),
                                                                     ("ChatMembersChanged", None)]
        assert [json.loads(data)["data"].get("seq") for _, data in frames(transports["u0"][0].written)[-3:]] == [
            10, None, 11]

    asyncio.run(scenario())
