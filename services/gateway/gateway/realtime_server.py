"""The realtime socket on asyncio (issue #17): ``GET /api/v1/realtime?access_token=`` served by aiohttp, one
process holding thousands of sockets where the gthread gateway holds one thread per socket.

It behaves as ``gateway.realtime`` does and decides with the same functions (``authenticate``, ``Audiences``,
``payloads``, ``conceal``, ``dispatch``): a socket opens only for an active session, closes when its token expires
and when identity's ``SessionEnded`` arrives, and each viewer receives the version of an event they may see.

- ONE broadcast consumer per process (``gateway.realtime.BroadcastConsumer``, a pika thread) hands each event to
  the loop (``call_soon_threadsafe``); one task takes them in order. A chat's audience not yet cached is asked in
  an executor (the RPC blocks), cached as in the gthread server.
- Fan-out never waits on a socket: an event is serialised once (its JSON and its WebSocket frame's bytes, once
  per version a viewer may see) and those bytes are written to each socket's transport directly, no task per
  frame; the transport keeps what the kernel did not take, in order. A socket holding more than
  ``buffer_limit`` unsent bytes (its client does not read) is dropped with close code 1013 (``realtime.too_slow``);
  the client reconnects and catches up with ``after=``.
- One origin: with ``--upstream`` (how ``make run`` starts it: ``SFERA_REALTIME_SERVER=asyncio``, the default) this
  process is the gateway's public port and passes every other request to the gunicorn gateway behind it, streamed
  both ways, on keep-alive connections of its own (``gateway.upstream``); a plain request (a chat post) goes below
  aiohttp's web layer (``gateway.front_proxy``), the rest through ``proxy``; its ``/healthz`` is the gateway's with
  this process's consumer added. In Kubernetes the Ingress routes
  ``/api/v1/realtime`` to a Deployment of this server instead (no upstream).
- Its HTTP front answers as gunicorn does (``FrontRunner``): the same limits and the same refusals (414, 431, 400)
  in the API's error shape (``gateway.http_refusals``), and any method token is read and passed on (the gateway
  answers it and counts it in its metrics as ``other``), where aiohttp's own answers are a plain-text 400. Requests
  are read by aiohttp's C parser; what it refuses or reads near a limit, by the Python one (``FrontParser``).

    python -m gateway.realtime_server --port 8080 [--upstream http://127.0.0.1:8081]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import signal
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong
from aiohttp.http_parser import HttpRequestParser, HttpRequestParserPy, HttpVersion11
from aiohttp.web_protocol import RequestHandler, RequestPayloadError
from prometheus_client import CONTENT_TYPE_LATEST, Histogram, generate_latest

from gateway.front_proxy import (
    FAILED,
    HOP_BY_HOP,
    UNREACHABLE,
    WHOLE_ANSWER_MAX,
    WHOLE_BODY_MAX,
    FrontConnection,
    forwarded_headers,
)
from gateway.http_refusals import (
    HEADER_FIELD_MAX,
    HEADERS_MAX,
    REQUEST_LINE_MAX,
    SERVER_NAME,
    near_a_limit,
    refusal,
)
from gateway.realtime import (
    CALL_PRESENCE,
    SESSION_ENDED,
    Audiences,
    BroadcastConsumer,
    authenticate,
    dispatch,
    error_frame,
    event_data,
    payloads,
    session_ended,
    token_expired,
)
from gateway.upstream import Exchange, Unreachable, Upstream
from shared.config import env_int, env_str, settings
from shared.errors import DomainError
from shared.observability import metrics
from shared.observability.gc import export_gc_metrics
from shared.observability.logging import configure_logging, get_logger
from shared.production import refuse_unsafe_start

log = get_logger("gateway.realtime_server")

PATH = "/api/v1/realtime"
POLICY = 1008  # a session ended, a token expired or did not verify
TOO_SLOW = 1013  # the client does not read its frames
REFUSAL_PAUSE = 0.2  # seconds between a refusal's reason and its close
CLOSE_GRACE = 5.0  # seconds a closing socket has to finish its close before its connection is cut
BUFFER_LIMIT = 256 << 10  # unsent bytes one socket may hold (its client not reading) before it is dropped


FAN_OUT = Histogram("sfera_realtime_fan_out_seconds", "From an event's arrival at the realtime server's consumer to "
                    "its frames handed to every recipient socket's kernel buffer (the server's share of send -> "
                    "delivered: its queue, the audience, the writes).",
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))
class Generations:
    """Keeps the objects of sockets that stay out of the cyclic collector's full passes (``gc.freeze``): a full pass
    walks every live object, and frees almost nothing here: bench.realtime measured 8 of them, 2.2 s of CPU, while
    10,000 sockets connected, every socket's frames waiting behind each; frozen: 1 of 58 ms). Sockets are frozen once
    they settle (``settle`` seconds after a connect, one freeze for all that came meanwhile). Frozen objects are never
    collected as cyclic garbage: once a quarter of the sockets frozen (at least ``min_churn``) have closed, the
    process thaws and collects once (a full pass, after that much churn only), then freezes again.
    SFERA_REALTIME_GC_FREEZE=no turns it off."""

    def __init__(self, loop: asyncio.AbstractEventLoop, settle: float = 1.0, churn: float = 0.25,
                 min_churn: int = 1000):
        self.loop, self.settle, self.churn, self.min_churn = loop, settle, churn, min_churn
        self.open = 0  # sockets open now
        self.frozen = 0  # sockets open at the last freeze
        self.closed = 0  # sockets closed since then
        self.pending: asyncio.TimerHandle | None = None

    def connected(self) -> None:
        self.open += 1
        self._schedule()

    def disconnected(self) -> None:
        self.open -= 1
        if not self.frozen:
            return
        self.closed += 1
        if self.closed >= max(self.min_churn, self.frozen * self.churn):
            gc.unfreeze()
            gc.collect()
            self.frozen = self.closed = 0
            if self.open:
                self._schedule()

    def _schedule(self) -> None:
        if self.pending is None:
            self.pending = self.loop.call_later(self.settle, self._freeze)

    def _freeze(self) -> None:
        self.pending = None
        gc.freeze()
        self.frozen = self.open


def websocket_frame(text: str) -> bytes:
    """A text frame's bytes as a server sends them (RFC 6455: final, opcode 1, unmasked, uncompressed): built once
    per version of an event and written as they are to each socket that receives that version."""
    payload = text.encode()
    size = len(payload)
    if size < 126:
        return bytes((0x81, size)) + payload
    if size < 65536:
        return bytes((0x81, 126)) + size.to_bytes(2, "big") + payload
    return bytes((0x81, 127)) + size.to_bytes(8, "big") + payload


PONG = websocket_frame("pong")


class Connection:
    """One socket. Frames are written to its transport as they come (no task, no queue of its own): the transport
    sends what the kernel takes at once and keeps the rest, in order, until the client reads. A client whose unsent
    bytes exceed the hub's ``buffer_limit`` is dropped (it never holds up the others). Its close (an error frame and
    the close frame after what was written) is the only task a socket gets."""

    __slots__ = ("ws", "request", "transport", "user_id", "session_id", "hub", "closer", "closing")

    def __init__(self, hub: AsyncHub, ws: web.WebSocketResponse, request: web.Request, user_id: str,
                 session_id: str):
        self.hub, self.ws, self.request, self.transport = hub, ws, request, request.transport
        self.user_id, self.session_id = user_id, session_id
        self.closer: asyncio.Task | None = None
        self.closing = False

    def push(self, frame: bytes) -> bool:
        """Write a frame (``websocket_frame``) now; a socket already holding more than ``buffer_limit`` unsent
        bytes is dropped instead."""
        transport = self.transport
        if self.closing or transport is None or transport.is_closing():
            return False
        if transport.get_write_buffer_size() > self.hub.buffer_limit:
            self.hub.drop_slow(self)
            return False
        transport.write(frame)
        return True

    def finish(self, reason: DomainError | None, code: int = POLICY) -> None:
        """Nothing more but the reason and the close; cut after CLOSE_GRACE if the client does not take them."""
        if self.closing:
            return
        self.closing = True
        self.closer = self.hub.loop.create_task(self._close(code, reason))
        self.hub.loop.call_later(self.hub.close_grace, self.abort)

    def abort(self) -> None:
        if not self.ws.closed and self.transport is not None:
            self.transport.abort()

    async def _close(self, code: int, reason: DomainError | None) -> None:
        try:
            if reason is not None:
                await self.ws.send_str(error_frame(reason))
            why = reason.code if reason is not None else "realtime.too_slow"
            await self.ws.close(code=code, message=why.encode())
        except (ConnectionError, RuntimeError, aiohttp.ClientError):  # the client went away
            log.debug("closing a closed socket", exc_info=True)


class AsyncHub:
    """Who is connected to this process, and the fan-out of events to them (all on the loop's thread)."""

    def __init__(self, rpc, loop: asyncio.AbstractEventLoop, buffer_limit: int = BUFFER_LIMIT, executor=None,
                 close_grace: float = CLOSE_GRACE, generations: Generations | None = None):
        self.rpc = rpc
        self.generations = generations
        self.close_grace = close_grace
        self.loop = loop
        self.buffer_limit = buffer_limit  # unsent bytes a socket may hold before it is dropped
        self.executor = executor or ThreadPoolExecutor(max_workers=8, thread_name_prefix="realtime-rpc")
        self.audiences = Audiences(rpc)
        self.sockets: dict[str, set[Connection]] = defaultdict(set)  # user id -> sockets
        self.sessions: dict[str, set[Connection]] = defaultdict(set)  # session id -> sockets
        self.events: asyncio.Queue = asyncio.Queue()
        self.asking: dict[str, asyncio.Future] = {}  # chat id -> its audience being asked (from an event's arrival)
        self.dropped = 0  # sockets dropped for not reading

    # -- from the consumer's thread --------------------------------------------------------------------------
    def handle_event(self, event) -> None:
        """BroadcastConsumer's hand-off: the event goes to the loop, in the order it arrived."""
        self.loop.call_soon_threadsafe(self._arrived, time.perf_counter(), event)

    # -- on the loop ---------------------------------------------------------------------------------------
    def _arrived(self, received: float, event) -> None:
        """An event joins the queue; a chat audience not cached is asked now, while the events before it are
        delivered (a cold cache -- a restart, many chats -- would otherwise ask one chat after another, every
        event waiting behind each answer). An answer serves this event and those after it up to the chat's next
        change of members (whose arrival asks again: the change was committed before it was published)."""
        asking = None
        if event.type.startswith("messaging.") and self.sockets and "chat_id" in event.data:
            chat_id = str(event.data["chat_id"])
            change = event.type.split(".")[1] in ("ChatMembersChanged", "ChatCreated")
            if change or chat_id not in self.audiences.members:
                asking = None if change else self.asking.get(chat_id)
                if asking is None:
                    asking = self.asking[chat_id] = self.loop.run_in_executor(
                        self.executor, partial(self.rpc.call, "messaging", "audience", chat_id=chat_id))
                    asking.add_done_callback(partial(self._asked, chat_id))
        self.events.put_nowait((received, event, asking))

    def _asked(self, chat_id: str, asking: asyncio.Future) -> None:
        if self.asking.get(chat_id) is asking:
            del self.asking[chat_id]

    async def run(self) -> None:
        while True:
            received, event, asking = await self.events.get()
            try:
                await self.handle(event, asking)
            except Exception:  # one event's failure (an RPC timing out) must not stop the others
                log.warning("realtime event not delivered", exc_info=True, extra={"event_type": event.type})
            FAN_OUT.observe(time.perf_counter() - received)

    async def handle(self, event, asking: asyncio.Future | None = None) -> None:
        if event.type == SESSION_ENDED or event.type in CALL_PRESENCE:
            dispatch(event, self)
            return
        await self.deliver(event.contract.routing_key, event_data(event), asking)

    async def deliver(self, event_type: str, data: dict[str, Any], asking: asyncio.Future | None = None) -> int:
        """``asking``: the chat's audience asked at the event's arrival (``_arrived``)."""
        self.audiences.heard(event_type, data)
        if not self.sockets:
            return 0
        try:
            if asking is not None and str(data["chat_id"]) not in self.audiences.members:
                audience = self.audiences.members[str(data["chat_id"])] = await asking
            elif self.audiences.needs_asking(event_type, data):
                audience = await self.loop.run_in_executor(self.executor, self.audiences.lookup, event_type, data)
            else:
                audience = self.audiences.lookup(event_type, data)
        except DomainError:
            return 0
        return self.fan_out(event_type, payloads(event_type, data, audience))

    def fan_out(self, event_type: str, frames: dict[str, str]) -> int:
        """Each recipient's version written to each of their sockets: every version's frame bytes are built once
        (the same bytes to every socket that receives it)."""
        sent = 0
        encoded: dict[str, bytes] = {}
        for user, text in frames.items():
            conns = self.sockets.get(user)
            if not conns:
                continue
            frame = encoded.get(text)
            if frame is None:
                frame = encoded[text] = websocket_frame(text)
            for conn in list(conns):
                sent += conn.push(frame)
        if sent:
            metrics.events_pushed.labels(event_type.split(".")[0]).inc(sent)
        return sent

    def connect(self, conn: Connection) -> None:
        self.sockets[conn.user_id].add(conn)
        self.sessions[conn.session_id].add(conn)
        metrics.websocket_connections.inc()
        if self.generations is not None:
            self.generations.connected()

    def disconnect(self, conn: Connection) -> None:
        if self._unroute(conn):
            metrics.websocket_connections.dec()
            if self.generations is not None:
                self.generations.disconnected()

    def _unroute(self, conn: Connection) -> bool:
        routed = conn in self.sockets.get(conn.user_id, ())
        for index, key in ((self.sockets, conn.user_id), (self.sessions, conn.session_id)):
            index.get(key, set()).discard(conn)
            if key in index and not index[key]:
                del index[key]
        return routed

    def end_session(self, session_id: str) -> int:
        """identity's SessionEnded: the session's sockets get nothing more and are closed now."""
        ended = list(self.sessions.get(str(session_id), ()))
        for conn in ended:
            self.disconnect(conn)
            conn.finish(session_ended())
        return len(ended)

    def forget_call(self, call_id: str) -> None:
        self.audiences.forget_call(call_id)

    def drop_slow(self, conn: Connection) -> None:
        self.dropped += 1
        log.info("realtime socket dropped: its client does not read", extra={"user_id": conn.user_id})
        self.disconnect(conn)
        conn.finish(None, TOO_SLOW)


HUB = web.AppKey("hub", AsyncHub)
UPSTREAM = web.AppKey("upstream", str)
CLIENT = web.AppKey("client", Upstream)
CONSUMER = web.AppKey("consumer", object)
TRUST_FORWARDED = web.AppKey("trust_forwarded", bool)


async def realtime(request: web.Request) -> web.WebSocketResponse:
    hub = request.app[HUB]
    # No per-message compression: a zlib context per socket costs more memory than the frames save.
    ws = web.WebSocketResponse(compress=False, max_msg_size=64 * 1024, timeout=CLOSE_GRACE)
    await ws.prepare(request)
    token = request.query.get("access_token", "")
    try:
        principal, expires_at = await hub.loop.run_in_executor(hub.executor, authenticate, token, hub.rpc)
    except DomainError as exc:
        await ws.send_str(error_frame(exc))
        # The close follows the reason a moment later: a client that reads the handshake's answer and the close
        # in one read (simple_websocket, the e2e tests' client) would otherwise fail to connect, reason unread.
        await asyncio.sleep(REFUSAL_PAUSE)
        await ws.close(code=POLICY, message=exc.code.encode())
        return ws
    except Exception:  # identity did not answer: the client tries again
        log.warning("realtime socket refused: its session could not be checked", exc_info=True)
        await ws.close(code=aiohttp.WSCloseCode.TRY_AGAIN_LATER, message=b"realtime.unavailable")
        return ws
    conn = Connection(hub, ws, request, str(principal.user_id), str(principal.session_id))
    hub.connect(conn)
    expiry = hub.loop.call_later(max(0.0, expires_at - time.time()), conn.finish, token_expired())
    try:
        conn.push(websocket_frame(json.dumps({"type": "ready", "user_id": conn.user_id})))
        async for message in ws:  # ends when the socket closes, from either side
            if message.type is aiohttp.WSMsgType.TEXT and message.data == "ping":
                conn.push(PONG)
    finally:
        expiry.cancel()
        hub.disconnect(conn)
        if conn.closer is not None:
            try:  # the close under way (bounded: abort() cuts it after CLOSE_GRACE)
                await asyncio.shield(conn.closer)
            except Exception:
                log.debug("closing a closed socket", exc_info=True)
    return ws


# -- one origin: every other request goes to the gunicorn gateway behind this process ---------------------------

async def proxy(request: web.Request) -> web.StreamResponse:
    headers = forwarded_headers(request.headers, request.remote or "", request.host, request.app[TRUST_FORWARDED])
    body = request.content if request.body_exists else None
    held: bytes | None = None
    length = request.content_length
    if body is not None and length is not None and length <= WHOLE_BODY_MAX and body.is_eof():
        held, body = await body.read(), None  # all of it came with the head: sent with it (and again if need be)
    elif body is not None and length is None:
        headers.append(("Transfer-Encoding", "chunked"))
    response: web.StreamResponse | None = None
    exchange: Exchange | None = None
    try:
        exchange = await request.app[CLIENT].send(request.method, request.rel_url.raw_path_qs, headers, held=held,
                                                  stream=body, chunked=length is None)
        message = exchange.message
        answer_length = message.headers.get("Content-Length")
        if answer_length is not None and int(answer_length) <= WHOLE_ANSWER_MAX:
            return await whole_answer(request, exchange, body)
        response = web.StreamResponse(status=message.code, reason=message.reason)
        for key, value in message.headers.items():
            if key.lower() not in HOP_BY_HOP:
                response.headers.add(key, value)
        response.headers.setdefault("Server", SERVER_NAME)  # else aiohttp names itself and its version
        if answer_length is None and message.code not in (204, 304):
            response.enable_chunked_encoding()
        await response.prepare(request)
        async for chunk in exchange.payload.iter_any():
            await response.write(chunk)
        await response.write_eof()
        return response
    except Unreachable:
        log.warning("the gateway behind the front is unreachable", exc_info=True)
        return front_error(*UNREACHABLE)
    except (TimeoutError, aiohttp.ClientError):
        # The gateway cut the connection. While the client's body was still coming (gunicorn closes at once after
        # refusing a body it will not read: 413), or once its answer had begun, the client's connection is cut
        # the same way, as it is without the front; else the gateway failed to answer.
        if (response is not None and response.prepared) or (body is not None and not request.content.at_eof()):
            log.info("the gateway cut a proxied request; its client's connection is cut too", exc_info=True)
            if request.transport is not None:
                request.transport.abort()
            return response or web.Response(status=502)
        log.warning("the gateway behind the front failed to answer", exc_info=True)
        return front_error(*FAILED)
    finally:
        if exchange is not None:
            exchange.release()


async def whole_answer(request: web.Request, exchange: Exchange, body) -> web.Response:
    """The gateway's answer, read whole first: the client gets all of it or none (never headers and a cut body).
    When the gateway refused a body it will not read (413) it closes at once; the reset that stops the client's
    body also discards the answer's bytes on their way (CI: headers of a 413 reached the client, its 192 bytes
    did not). The front then gives the same refusal itself and closes."""
    message = exchange.message
    try:
        data = await exchange.payload.read()
    except (TimeoutError, aiohttp.ClientError):
        if body is None or request.content.at_eof():
            raise
        log.info("the gateway refused a body and closed; the front answers its status", exc_info=True)
        content, headers = refusal(message.code)
        return web.Response(status=message.code, body=content,
                            headers={**headers, "Server": SERVER_NAME, "Connection": "close"})
    response = web.Response(status=message.code, reason=message.reason, body=data)
    for key, value in message.headers.items():
        if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
            response.headers.add(key, value)
    response.headers.setdefault("Server", SERVER_NAME)
    if body is not None and not request.content.at_eof():
        response.force_close()  # the client's body was not read whole: no keep-alive after it
    return response


UPSTREAM_KEEPALIVE = 1.0  # seconds an idle connection to the gateway is kept: below gunicorn's keepalive (2)
ROUTING_CODES = {404: "route.not_found", 405: "route.method_not_allowed"}  # as the gateway's own (errors.py)


@web.middleware
async def refusals_in_the_one_shape(request: web.Request, handler) -> web.StreamResponse:
    """aiohttp's own refusals (a path no route takes, a method the socket's route does not) in the API's error
    shape, as the gateway answers them, not aiohttp's text/plain naming itself."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = ROUTING_CODES.get(exc.status, "request.invalid" if exc.status < 500 else "service.failed")
        return front_error(exc.status, code, exc.reason)


def front_error(status: int, code: str, message: str) -> web.Response:
    """An answer of this process itself in the API's error shape (with the security headers)."""
    body, headers = refusal(status, message, code)
    return web.Response(status=status, body=body, headers={**headers, "Server": SERVER_NAME})


async def healthz(request: web.Request) -> web.Response:
    """The gateway's health (when this process fronts it) with this process's consumer added."""
    consumer = request.app.get(CONSUMER)
    ready = consumer is None or consumer.ready.is_set()
    checks: dict[str, Any] = {"realtime": "ok" if ready else "the realtime consumer is not connected to the broker"}
    healthy = ready
    if UPSTREAM in request.app:
        try:
            status, body = await request.app[CLIENT].fetch("GET", "/healthz")
            checks = {**json.loads(body).get("checks", {}), **checks}
            healthy = healthy and status == 200
        except (aiohttp.ClientError, ValueError, AttributeError) as exc:
            checks["gateway"] = f"unreachable: {exc}"
            healthy = False
    return web.json_response({"process": "gateway", "status": "ok" if healthy else "failing", "checks": checks},
                             status=200 if healthy else 503)


async def prometheus_metrics(request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})


# -- the HTTP front: gunicorn's limits and refusals ------------------------------------------------------------
class Refused(HttpProcessingError):
    """A request refused before it was read whole: its request line (414) or its headers (431) too long."""


class FrontParserPy(HttpRequestParserPy):
    """aiohttp's pure-Python request parser, as gunicorn reads a request: any method token (llhttp, aiohttp's C
    parser, knows a fixed list and refuses the rest before the gateway sees them), a request line of at most
    REQUEST_LINE_MAX bytes (414) and HEADERS_MAX headers of at most HEADER_FIELD_MAX bytes each (431). The front's
    judge of a request the C parser refused or found near a limit (``FrontParser``)."""

    def __init__(self, protocol, loop, limit: int, **kwargs):
        # the line limit of a line still arriving is aiohttp's max_line_size, for headers too: the request line's
        # own (smaller) limit is checked once it is whole (parse_message)
        super().__init__(protocol, loop, limit, max_line_size=HEADER_FIELD_MAX, max_field_size=HEADER_FIELD_MAX,
                         max_headers=HEADERS_MAX, **kwargs)

    def feed_data(self, data: bytes, *args, **kwargs):
        try:
            return super().feed_data(data, *args, **kwargs)
        except LineTooLong as exc:  # no line whole yet: the request line; else a header
            raise Refused(code=414 if not self._lines else 431, message="too long") from exc
        except Refused:
            raise
        except HttpProcessingError as exc:
            if len(self._lines) > self.max_headers:
                raise Refused(code=431, message="too many headers") from exc
            raise

    def parse_message(self, lines: list[bytes]):
        if len(lines[0]) > REQUEST_LINE_MAX:
            raise Refused(code=414, message="request line too long")
        return super().parse_message(lines)


class FrontParser:
    """A connection's request parser: aiohttp's C parser (llhttp) reads what it reads as gunicorn would, and
    ``FrontParserPy`` judges the rest, so the front refuses and passes on exactly what the Python parser alone
    did (a profile of the proxy hop put 18 % of the front's CPU a request in the Python parser).

    The C parser refuses what the Python one may take (a method token llhttp does not list) and measures its limits
    otherwise (the URL, not the request line; a header's name and value, not its line): a request it refuses, or
    takes near a limit (``NEAR``), is read again from its first byte by a FrontParserPy, which then reads the rest
    of the connection. Its first byte: the bytes since the C parser last stood between two requests are kept
    (``replay``: a request's head still arriving). Where a request ends inside a read of the socket with the next
    one's first bytes after it (pipelining: no browser does it) the next read is taken as starting a request."""

    __slots__ = ("c", "py", "replay", "payload", "protocol", "loop", "limit", "kwargs")

    def __init__(self, protocol, loop, limit: int, **kwargs):
        self.protocol, self.loop, self.limit, self.kwargs = protocol, loop, limit, kwargs
        self.c = HttpRequestParser(protocol, loop, limit, max_line_size=REQUEST_LINE_MAX,
                                   max_field_size=HEADER_FIELD_MAX, max_headers=HEADERS_MAX, **kwargs)
        self.py: FrontParserPy | None = None
        self.replay: bytearray | None = bytearray()  # None: inside a body
        self.payload = None  # the body of the last request read (EMPTY_PAYLOAD when it has none)

    def feed_data(self, data: bytes):
        if self.py is not None:
            return self.py.feed_data(data)
        try:
            result = self.c.feed_data(data)
        except HttpProcessingError as exc:
            return self._judge(data, exc)
        messages = result[0]
        if self.replay is not None and any(near_a_limit(message) for message, _ in messages):
            return self._judge(data, None)  # (after a body ending in this read, gunicorn's own limits judge it)
        in_body = self.payload is not None and not self.payload.is_eof()
        if messages:
            self.payload = messages[-1][1]
        if self.payload is not None and not self.payload.is_eof():
            self.replay = None
        elif messages or in_body:
            self.replay = bytearray()  # a request or its body ended with this read
        elif data:
            if self.replay is None:
                self.replay = bytearray()
            self.replay += data  # a head still arriving
        return result

    def _judge(self, data: bytes, refused: HttpProcessingError | None):
        """The Python parser reads from the first byte of the request the C parser ``refused`` (or found near a
        limit: None) on, and reads the rest of the connection."""
        if self.replay is None:  # inside a body: the C parser's refusal stands
            raise refused
        self.py = FrontParserPy(self.protocol, self.loop, self.limit, **self.kwargs)
        replay, self.replay = bytes(self.replay) + data, None
        return self.py.feed_data(replay)

    def feed_eof(self):
        return (self.py or self.c).feed_eof()

    def pause_reading(self) -> None:
        (self.py or self.c).pause_reading()

    def message_consumed(self) -> None:
        (self.py or self.c).message_consumed()

    def set_upgraded(self, value: bool) -> None:
        (self.py or self.c).set_upgraded(value)


class FrontHandler(RequestHandler):
    """aiohttp's connection handler with the FrontParser, and its own answers in the API's error shape."""

    def __init__(self, manager, *, loop, **kwargs):
        super().__init__(manager, loop=loop, **kwargs)
        self._parser = FrontParser(self, loop, self._read_bufsize, payload_exception=RequestPayloadError,
                                   auto_decompress=kwargs.get("auto_decompress", True),
                                   max_msg_queue_size=self._max_msg_queue_size)

    def handle_error(self, request, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        if isinstance(exc, HttpProcessingError) and 400 <= exc.code < 500:
            status = exc.code
        if status >= 500:
            self.log_exception("Error handling request from %s", request.remote, exc_info=exc)
        else:  # the client's mistake: not this process's error
            log.debug("request refused by the front", extra={"status": status, "error": repr(exc)})
        if request.writer.output_size > 0:
            raise ConnectionError("an answer was already under way: no refusal can follow it")
        # aiohttp answers a request it could not read as HTTP/1.0 (its placeholder request's version); gunicorn, as
        # the client spoke, HTTP/1.1
        request._version = HttpVersion11
        body, headers = refusal(status)
        response = web.Response(status=status, body=body, headers={**headers, "Server": SERVER_NAME})
        response.force_close()
        return response


class FrontServer(web.Server):
    """Each connection a FrontConnection when the front has a gateway behind it (its plain requests below the
    web layer, ``gateway.front_proxy``), else, and from its first request that is not plain, a FrontHandler."""

    fast: tuple[Upstream, frozenset[str], bool] | None = None  # the gateway, the front's own paths, trust

    def __call__(self) -> asyncio.Protocol:
        if self.fast is not None:
            return FrontConnection(self, self._loop, *self.fast, handler_factory=self.handler)
        return self.handler()

    def handler(self) -> RequestHandler:
        return FrontHandler(self, loop=self._loop, **self._kwargs)


class FrontRunner(web.AppRunner):
    """An AppRunner whose connections are FrontHandlers; request bodies are passed on as they came (no
    decompression: their Content-Encoding goes with them)."""

    def __init__(self, app: web.Application, **kwargs):
        super().__init__(app, auto_decompress=False, **kwargs)

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = FrontServer
        app = self.app
        if CLIENT in app and env_str("SFERA_FRONT_FAST_PATH", "yes") == "yes":
            own = frozenset(r.canonical for r in app.router.resources() if "{" not in r.canonical)
            server.fast = (app[CLIENT], own, app[TRUST_FORWARDED])
        return server


def make_app(rpc, *, amqp_uri: str | None = None, upstream: str | None = None,
             buffer_limit: int = BUFFER_LIMIT, close_grace: float = CLOSE_GRACE,
             freeze_sockets: bool = False) -> web.Application:
    """The realtime server; with ``amqp_uri`` it starts its broadcast consumer, with ``upstream`` it fronts the
    gunicorn gateway (every path but the socket, its own health and metrics goes there); with ``freeze_sockets``
    (the process's own, not a test's) its sockets' objects are kept out of the collector's full passes
    (``Generations``)."""
    app = web.Application(middlewares=[refusals_in_the_one_shape])
    app[TRUST_FORWARDED] = env_str("SFERA_TRUST_FORWARDED_FOR", "no") == "yes"

    async def lifecycle(app: web.Application):
        loop = asyncio.get_running_loop()
        hub = AsyncHub(rpc, loop, buffer_limit, close_grace=close_grace,
                       generations=Generations(loop) if freeze_sockets else None)
        app[HUB] = hub
        runner = asyncio.create_task(hub.run())
        if amqp_uri:
            consumer = BroadcastConsumer(amqp_uri, hub)
            consumer.start()
            app[CONSUMER] = consumer
        if upstream:
            app[UPSTREAM] = upstream.rstrip("/")
            # an idle connection to gunicorn is let go before gunicorn's keep-alive (2 s) closes it: reusing one
            # gunicorn is closing lost the request's answer ("Server disconnected", a 502 in CI)
            app[CLIENT] = Upstream(upstream, limit=env_int("SFERA_REALTIME_UPSTREAM_CONNECTIONS", 64),
                                   keepalive=UPSTREAM_KEEPALIVE)
        yield
        runner.cancel()
        if CONSUMER in app:
            await loop.run_in_executor(None, app[CONSUMER].stop)
        if upstream:
            await app[CLIENT].close()
        hub.executor.shutdown(wait=False, cancel_futures=True)

    app.cleanup_ctx.append(lifecycle)
    app.router.add_get(PATH, realtime)
    if upstream:
        app.router.add_get("/healthz", healthz)
        app.router.add_get("/_realtime/metrics", prometheus_metrics)
        # [\s\S], not '.': a decoded path may hold a line break (%0A) and is the gateway's to answer
        app.router.add_route("*", r"/{tail:[\s\S]*}", proxy)
    else:
        app.router.add_get("/healthz", healthz)
        app.router.add_get("/metrics", prometheus_metrics)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", help="the gunicorn gateway this process fronts (every other path)")
    args = parser.parse_args()
    configure_logging("gateway")
    export_gc_metrics("realtime")
    refuse_unsafe_start("realtime")  # as the gunicorn gateway does: no start on development secrets in production
    from gateway.rpc import RpcPool

    amqp_uri = settings().amqp_uri
    rpc = RpcPool(amqp_uri, size=env_int("SFERA_GATEWAY_RPC_POOL", 16), timeout=env_int("SFERA_RPC_TIMEOUT", 10))
    app = make_app(rpc, amqp_uri=amqp_uri, upstream=args.upstream,
                   buffer_limit=env_int("SFERA_REALTIME_BUFFER_KIB", BUFFER_LIMIT >> 10) << 10,
                   freeze_sockets=env_str("SFERA_REALTIME_GC_FREEZE", "yes") == "yes")
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(serve(app, args.host, args.port))


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """The process's event loop: uvloop's (libuv; its transports, timers and hand-offs from threads are C where
    asyncio's are Python: 0.87x the front's CPU a proxied chat post and 0.83x a post's fan-out to 40 sockets with
    its broadcast consumer, measured in turns), or asyncio's own with SFERA_FRONT_LOOP=asyncio."""
    if env_str("SFERA_FRONT_LOOP", "uvloop") == "asyncio":
        return asyncio.new_event_loop
    import uvloop

    return uvloop.new_event_loop


async def start(app: web.Application, host: str, port: int) -> FrontRunner:
    """The app listening on host:port behind the FrontRunner (what main and the tests run)."""
    runner = FrontRunner(app, access_log=None, shutdown_timeout=5)
    await runner.setup()
    await web.TCPSite(runner, host, port, backlog=4096).start()
    return runner


async def serve(app: web.Application, host: str, port: int) -> None:
    """Until SIGTERM or SIGINT; then the sockets are closed and the app cleaned up."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    runner = await start(app, host, port)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()

if __name__ == "__main__":
    main()
