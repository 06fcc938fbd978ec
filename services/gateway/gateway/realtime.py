"""Realtime delivery: a WebSocket per signed-in client, fed by one broadcast
consumer per gateway process.

Each gateway process binds its own exclusive queue to ``messaging.events`` (so
several gateways each receive every event and push to their own clients), looks
up who may see the chat (messaging's ``audience``, cached and dropped when the
members change) and sends the event to those members' sockets, each viewer the
version of it they may see (``conceal``: one place decides). A client that
reconnects catches up with ``GET /chats/{id}/messages?after=<last seq>``.

A call's whiteboard changes (CA-3, ``calls.WhiteboardChanged``) go to the people in
the call now (calls' ``board_audience``, cached and dropped when someone is let in,
connects, leaves, or the call ends); a client that misses a ``revision`` reads the board again.

A socket lives as long as its session (ID-8): it opens only for a session identity
says is active, closes when its access token expires, and the same queue receives
identity's ``SessionEnded``, on which every socket of that session is closed at once.

    ws://host/api/v1/realtime?access_token=<JWT>
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from typing import Any

import jwt
import pika
from flask import Flask, request
from flask_sock import Sock

from shared.auth import verify_access_token
from shared.bus.queues import own_queue_arguments
from shared.contracts import ContractError, get_contract, loading, parse_event
from shared.errors import DomainError, Unauthorized
from shared.observability import metrics
from shared.observability.logging import get_logger

log = get_logger("gateway.realtime")

# The events pushed to sockets and the one that closes them, by contract type: their exchanges and routing keys
# are the catalogue's (shared.contracts), never spelled here.
PUSHED = tuple(f"messaging.{name}.v1" for name in (
    "MessagePosted", "MessageEdited", "MessageDeleted", "ChatMembersChanged", "ChatCreated", "ChatUpdated",
    "PollVoted", "PollClosed", "MessagesRead")) + ("calls.WhiteboardChanged.v1",)
# Who is in a call changed: its cached audience is dropped (nothing is pushed for these).
CALL_PRESENCE = tuple(f"calls.{name}.v1" for name in ("ParticipantAdmitted", "ParticipantJoined", "ParticipantLeft",
                                                       "CallEnded"))
CALL_EVENTS = ("WhiteboardChanged",)  # pushed to a call's people, not a chat's
SESSION_ENDED = "identity.SessionEnded.v1"


class Audiences:
    """Who may see an event, asked of its owner and cached per process: a chat's members (messaging's
    ``audience``, dropped when the members change) and the people in a call (calls' ``board_audience``, dropped
    when someone is let in, connects, leaves, or the call ends). Both realtime servers hold one and decide with it;
    ``needs_asking`` tells the asyncio one when ``lookup`` would make an RPC (it then runs it in an executor)."""

    def __init__(self, rpc):
        self.rpc = rpc
        self.members: dict[str, dict] = {}  # chat id -> its audience (cache)
        self.in_call: dict[str, dict] = {}  # call id -> the people in it (cache)

    def chat_audience(self, chat_id: str) -> dict:
        """messaging's answer: the members, and those of them only they themselves may see named."""
        if chat_id not in self.members:
            self.members[chat_id] = self.rpc.call("messaging", "audience", chat_id=chat_id)
        return self.members[chat_id]

    def call_audience(self, call_id: str, actor: str | None = None) -> dict:
        """calls' answer: the people in the call now (asked again when ``actor`` is not among them yet)."""
        known = self.in_call.get(call_id)
        if known is None or (actor is not None and actor not in known["members"]):
            self.in_call[call_id] = self.rpc.call("calls", "board_audience", call_id=call_id)
        return self.in_call[call_id]

    def forget_call(self, call_id: str) -> None:
        """Someone joined or left the call, or it ended: its audience is asked again at its next change."""
        self.in_call.pop(call_id, None)

    def heard(self, event_type: str, data: dict[str, Any]) -> None:
        """A chat's members changed (or it was just made): its cached audience is stale."""
        if event_type.startswith(("ChatMembersChanged", "ChatCreated")):
            self.members.pop(str(data["chat_id"]), None)

    def needs_asking(self, event_type: str, data: dict[str, Any]) -> bool:
        """Whether ``lookup`` would ask a service (an RPC) rather than answer from the cache."""
        if event_type.split(".")[0] in CALL_EVENTS:
            known = self.in_call.get(str(data["call_id"]))
            return known is None or str(data.get("by")) not in known["members"]
        return str(data["chat_id"]) not in self.members

    def lookup(self, event_type: str, data: dict[str, Any]) -> dict:
        if event_type.split(".")[0] in CALL_EVENTS:
            return self.call_audience(str(data["call_id"]), str(data.get("by")))
        return self.chat_audience(str(data["chat_id"]))


def payloads(event_type: str, data: dict[str, Any], audience: dict) -> dict[str, str]:
    """Who receives an event and what each of them receives (the frame's text): the audience's members (and
    those a ChatMembersChanged removed), each the version they may see (``conceal``); a viewer left with nothing to
    be told is not in the answer."""
    kind = event_type.split(".")[0]
    recipients = {str(u) for u in audience["members"]}
    if kind == "ChatMembersChanged":
        recipients |= {str(u) for u in data.get("removed", [])}  # those removed learn it too
    concealed = {str(u) for u in audience.get("concealed") or ()}
    versions = ((True, data), (False, conceal(kind, data, concealed))) if concealed else ((True, data),)
    # each version serialised once (one when nobody is concealed), the same text for every viewer of it
    frames = {seen: json.dumps({"type": kind, "data": shown}, default=str) if shown is not None else None
              for seen, shown in versions}
    shown = {user: frames[user in concealed or not concealed] for user in recipients}
    return {user: frame for user, frame in shown.items() if frame is not None}


def error_frame(reason: DomainError) -> str:
    """The last frame a refused or closed socket receives: why, in the API's error shape."""
    return json.dumps({"type": "error", "error": reason.to_dict()})


def authenticate(token: str, rpc) -> tuple[Any, float]:
    """The principal a socket's access token names and when the token expires; a DomainError when it does not
    verify or its session was signed out (ID-8; the RPC to identity blocks: the asyncio server runs this in an
    executor)."""
    principal = verify_access_token(token)
    expires_at = token_expiry(token)
    # A signed-out session's access token still verifies until it expires: ask its owner.
    if not principal.session_id or not rpc.call("identity", "session_is_active", session_id=principal.session_id):
        raise Unauthorized("auth.session_ended", "This session was signed out; sign in again.")
    return principal, expires_at


def session_ended() -> Unauthorized:
    return Unauthorized("auth.session_ended", "This session was signed out.")


def token_expired() -> Unauthorized:
    return Unauthorized("auth.token_expired", "The access token has expired; connect again with a fresh one.")


def event_data(event) -> dict[str, Any]:
    """An event's data as JSON values (what ``event.to_dict()["data"]`` gives), with its contract's one schema
    (dumped field by field, shared/contracts/loading.py: the schema's own dump, a third of its CPU)."""
    return loading.dump(event.contract.data_schema(), event.data)


def dispatch(event, hub) -> None:
    """What an event from the broadcast queue does to a hub (either server's): end a session, forget a call's
    people, or be delivered."""
    if event.type == SESSION_ENDED:
        hub.end_session(str(event.data["session_id"]))
    elif event.type in CALL_PRESENCE:
        hub.forget_call(str(event.data["call_id"]))
    else:
        hub.deliver(event.contract.routing_key, event_data(event))


class Hub:
    """Who is connected here, and the fan-out of events to them (the gthread server: one thread per socket)."""

    def __init__(self, rpc):
        self.rpc = rpc
        self.audiences = Audiences(rpc)
        self.lock = threading.Lock()
        self.sockets: dict[str, set] = defaultdict(set)  # user id -> sockets
        self.send_locks: dict[int, threading.Lock] = {}
        self.session_sockets: dict[str, set] = defaultdict(set)  # session id -> (user id, socket)
        self.session_of: dict[int, str] = {}  # id(socket) -> its session id

    def handle_event(self, event) -> None:
        dispatch(event, self)

    def connect(self, user_id: str, ws, session_id: str | None = None) -> threading.Lock:
        """Route events to ``ws``; returns the socket's send lock, the one every writer to it holds (a socket
        is routed exactly as long as its lock is in ``send_locks``)."""
        send_lock = threading.Lock()
        with self.lock:
            self.sockets[user_id].add(ws)
            self.send_locks[id(ws)] = send_lock
            self.session_sockets[str(session_id)].add((user_id, ws))
            self.session_of[id(ws)] = str(session_id)
        metrics.websocket_connections.inc()
        return send_lock

    def disconnect(self, user_id: str, ws) -> None:
        with self.lock:
            self._unroute(user_id, ws)
            self.send_locks.pop(id(ws), None)
        metrics.websocket_connections.dec()

    def _unroute(self, user_id: str, ws) -> None:
        """No more events to this socket (under ``self.lock``)."""
        self.sockets[user_id].discard(ws)
        if not self.sockets[user_id]:
            del self.sockets[user_id]
        session_id = self.session_of.pop(id(ws), None)
        if session_id is not None:
            self.session_sockets[session_id].discard((user_id, ws))
            if not self.session_sockets[session_id]:
                del self.session_sockets[session_id]

    def end_session(self, session_id: str) -> int:
        """identity's SessionEnded: the session's sockets get nothing more and are closed now."""
        with self.lock:
            ended = list(self.session_sockets.get(str(session_id), ()))
            for user_id, ws in ended:
                self._unroute(user_id, ws)
            locks = [self.send_locks[id(ws)] for _, ws in ended]
        for (_, ws), send_lock in zip(ended, locks, strict=True):
            with send_lock:
                close(ws, session_ended())
        return len(ended)

    def forget_call(self, call_id: str) -> None:
        self.audiences.forget_call(call_id)

    def deliver(self, event_type: str, data: dict[str, Any]) -> int:
        self.audiences.heard(event_type, data)
        with self.lock:
            if not self.sockets:
                return 0
        try:
            audience = self.audiences.lookup(event_type, data)
        except DomainError:
            return 0
        frames = payloads(event_type, data, audience)
        sent = 0
        with self.lock:
            targets = [(ws, self.send_locks[id(ws)], frame)
                       for user, frame in frames.items() for ws in self.sockets.get(user, ())]
        for ws, send_lock, payload in targets:
            try:
                with send_lock:
                    ws.send(payload)
                sent += 1
                metrics.events_pushed.labels(event_type.split(".")[0]).inc()
            except Exception:  # a closing socket is the handler's to clean up
                log.debug("push to a closing socket failed", exc_info=True)
        return sent


ID_FIELDS = ("user_id", "author_id", "deleted_by", "created_by")
LIST_FIELDS = ("member_ids", "added", "removed")
# what an event tells of the person an id field names, hidden with the id: a concealed admin's own read mark before
# this one (the organization's mark is not one admin's)
PERSONAL_FIELDS = {"user_id": ("read_from",), "author_id": ("author_read_from",)}


def conceal(kind: str, data: dict[str, Any], concealed: set[str]) -> dict[str, Any] | None:
    """What a viewer who may not see the ``concealed`` members receives of an event:
    their ids blanked or left out (CH-5: "MessagesRead" by an admin of an inbox
    thread reads as the organization's, and so does the read mark a "MessagePosted" implies, its
    ``read_by_author``: the author it names is the one a viewer may see; with the id, what the event tells of that
    person alone: ``PERSONAL_FIELDS``); None when nothing is left to tell."""
    if not concealed:
        return data
    shown = dict(data)
    for field in ID_FIELDS:
        if field in shown and str(shown[field]) in concealed:
            shown[field] = None
            for personal in PERSONAL_FIELDS.get(field, ()):
                if personal in shown:
                    shown[personal] = None
    for field in LIST_FIELDS:
        if field in shown:
            shown[field] = [m for m in shown[field] if str(m) not in concealed]
    if kind == "ChatMembersChanged" and not shown.get("added") and not shown.get("removed"):
        return None
    return shown


def close(ws, reason: DomainError) -> None:
    """Tell the client why, close with 1008 (policy violation), and wake the socket's
    handler thread, which then leaves its receive loop."""
    try:
        ws.send(error_frame(reason))
        ws.close(reason=1008, message=reason.code)
    except Exception:  # already closed by the client
        log.debug("closing a closed socket", exc_info=True)
    wake = getattr(ws, "event", None)
    if wake is not None:
        wake.set()


def token_expiry(token: str) -> float:
    """When a verified access token expires (its ``exp``, seconds since the epoch)."""
    return float(jwt.decode(token, options={"verify_signature": False})["exp"])


class BroadcastConsumer(threading.Thread):
    """This gateway process's own queue on ``messaging.events`` (and identity's
    ``SessionEnded``); reconnects until ``stop()``."""

    def __init__(self, amqp_uri: str, hub: Hub):
        super().__init__(name="realtime-consumer", daemon=True)
        self.amqp_uri = amqp_uri
        self.hub = hub
        self.ready = threading.Event()
        self.stopping = threading.Event()
        self.connection: pika.BlockingConnection | None = None
        self.channel = None

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                connection = self.connection = pika.BlockingConnection(pika.URLParameters(self.amqp_uri))
                try:
                    if self.stopping.is_set():  # stop() came while connecting
                        return
                    channel = self.channel = connection.channel()
                    queue = self.bind(channel)
                    channel.basic_consume(queue, self.on_message, auto_ack=True)
                    self.ready.set()
                    channel.start_consuming()  # returns when stop() stops it
                finally:
                    self.ready.clear()
                    if self.stopping.is_set() and connection.is_open:
                        connection.close()
            except Exception:
                self.ready.clear()
                if self.stopping.is_set():
                    return
                log.warning("realtime consumer lost the broker; reconnecting", exc_info=True)
                self.stopping.wait(1)

    def _stop_consuming(self) -> None:
        if self.channel is not None and self.channel.is_open:
            self.channel.stop_consuming()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop consuming and close the connection (the server's cleanup): without it the thread went on
        reconnecting every second to a broker that may be gone, for as long as the process lived."""
        self.stopping.set()
        connection = self.connection
        if connection is not None:
            try:  # the connection belongs to the consumer's thread: its channel stops consuming there
                connection.add_callback_threadsafe(self._stop_consuming)
            except Exception:  # noqa: BLE001 - closed already: the thread is leaving
                log.debug("stopping a closed realtime consumer", exc_info=True)
        self.join(timeout)

    @staticmethod
    def bind(channel) -> str:
        """This process's exclusive queue, bound to every pushed event's exchange and routing key."""
        declared = channel.queue_declare("", exclusive=True, auto_delete=True, arguments=own_queue_arguments())
        queue = declared.method.queue
        for contract in map(get_contract, (*PUSHED, *CALL_PRESENCE, SESSION_ENDED)):
            channel.exchange_declare(contract.exchange, exchange_type="topic", durable=True)
            channel.queue_bind(queue, contract.exchange, routing_key=contract.routing_key)
        return queue

    def on_message(self, channel, method, properties, body) -> None:
        try:
            event = parse_event(body)
        except ContractError:
            log.warning("malformed event ignored by realtime")
            return
        self.hub.handle_event(event)


CONSUMER_WAIT = 10.0  # seconds a socket waits for its process's broadcast consumer to reach the broker


def install(app: Flask, amqp_uri: str, rpc, start_consumer: bool = True) -> Hub:
    """The gthread realtime socket. Its process's broadcast consumer starts with the first socket that opens here
    (``listen``), not with the process: a gunicorn gateway behind the asyncio server (``make run``) or beside the
    realtime Deployment (Kubernetes) never holds a socket, and received every event for nobody (parsed, dumped,
    found no socket: a tenth of its CPU per chat message, bench.gateway_post), its queue one more copy of each
    event for the broker. ``start_consumer=False`` (a test's app): never."""
    hub = Hub(rpc)
    sock = Sock(app)
    starting = threading.Lock()

    def listen() -> bool:
        """This process's consumer, started if it is not yet; whether it is bound to the broker (waited for, at
        most CONSUMER_WAIT s): a socket is told it is ready only once no event published after that is missed."""
        if not start_consumer:
            return True
        with starting:
            consumer = app.extensions.get("realtime_consumer")
            if consumer is None:
                consumer = app.extensions["realtime_consumer"] = BroadcastConsumer(amqp_uri, hub)
                consumer.start()
        return consumer.ready.wait(CONSUMER_WAIT)

    hub.listen = listen  # type: ignore[attr-defined]

    @sock.route("/api/v1/realtime")
    def realtime(ws):
        token = request.args.get("access_token", "")
        try:
            principal, expires_at = authenticate(token, hub.rpc)
        except DomainError as exc:
            close(ws, exc)
            return
        if not listen():  # the broker is not reachable: as the asyncio server answers a check that failed
            log.warning("realtime socket refused: the broadcast consumer is not connected to the broker")
            try:
                ws.close(reason=1013, message="realtime.unavailable")
            except Exception:  # already closed by the client
                log.debug("closing a closed socket", exc_info=True)
            return
        user_id = str(principal.user_id)
        send_lock = hub.connect(user_id, ws, principal.session_id)
        try:
            ws.send(json.dumps({"type": "ready", "user_id": user_id}))
            while True:
                left = expires_at - time.time()
                if left <= 0:
                    with send_lock:
                        close(ws, token_expired())
                    break
                message = ws.receive(timeout=min(30.0, left))
                if message is None:
                    continue  # the client is idle; the socket's own pings keep it alive
                if message == "ping":
                    with send_lock:
                        ws.send("pong")
        except Exception:  # the client went away
            pass
        finally:
            hub.disconnect(user_id, ws)

    app.extensions["realtime"] = hub
    return hub
