"""The realtime socket on asyncio (issue #17): ``GET /api/v1/realtime?access_token=`` served by aiohttp, one
process holding thousands of sockets where the gthread gateway holds one thread per socket.

It behaves as ``gateway.realtime`` does and decides with the same functions (``authenticate``, ``Audiences``,
``payloads``, ``conceal``, ``dispatch``): a socket opens only for an active session, closes when its token expires
and when identity's ``SessionEnded`` arrives, and each viewer receives the version of an event they may see.

- ONE broadcast consumer per process (``gateway.realtime.BroadcastConsumer``, a pika thread) hands each event to
  the loop (``call_soon_threadsafe``); one task takes them in order. A chat's audience not yet cached is asked in
  an executor (the RPC blocks), cached as in the gthread server.
- Fan-out never waits on a socket: each socket has a bounded queue of frames and a writer task only while the
  queue is not empty. A socket whose queue is full (its client does not read) is dropped with close code 1013
  (``realtime.too_slow``); the client reconnects and catches up with ``after=``.
- One origin: with ``--upstream`` (how ``make run`` starts it when ``SFERA_REALTIME_SERVER=asyncio``) this process
  is the gateway's public port and passes every other request to the gunicorn gateway behind it, streamed both
  ways; its ``/healthz`` is the gateway's with this process's consumer added. In Kubernetes the Ingress routes
  ``/api/v1/realtime`` to a Deployment of this server instead (no upstream).

    python -m gateway.realtime_server --port 8080 [--upstream http://127.0.0.1:8081]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import defaultdict, deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

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
from shared.config import env_int, settings
from shared.errors import DomainError
from shared.observability import metrics
from shared.observability.logging import configure_logging, get_logger

log = get_logger("gateway.realtime_server")

PATH = "/api/v1/realtime"
POLICY = 1008  # a session ended, a token expired or did not verify
TOO_SLOW = 1013  # the client does not read its frames
REFUSAL_PAUSE = 0.2  # seconds between a refusal's reason and its close
CLOSE_GRACE = 5.0  # seconds a closing socket has to finish its close before its connection is cut


class Closing:
    """The last item of a socket's queue: an error frame (when there is a reason to tell) and the close."""

    __slots__ = ("code", "reason")

    def __init__(self, code: int, reason: DomainError | None):
        self.code, self.reason = code, reason


class Connection:
    """One socket: its bounded queue of frames and the writer task that runs only while the queue is not empty
    (the only one that writes to the socket)."""

    __slots__ = ("ws", "request", "user_id", "session_id", "hub", "pending", "writer", "closing")

    def __init__(self, hub: AsyncHub, ws: web.WebSocketResponse, request: web.Request, user_id: str,
                 session_id: str):
        self.hub, self.ws, self.request = hub, ws, request
        self.user_id, self.session_id = user_id, session_id
        self.pending: deque = deque()
        self.writer: asyncio.Task | None = None
        self.closing = False

    def offer(self, frame: str) -> bool:
        """Queue a frame; a socket whose queue is full is dropped (it never holds up the others)."""
        if self.closing:
            return False
        if len(self.pending) >= self.hub.queue_limit:
            self.hub.drop_slow(self)
            return False
        self.pending.append(frame)
        self._wake()
        return True

    def finish(self, reason: DomainError | None, code: int = POLICY) -> None:
        """Nothing more but the reason and the close; cut after CLOSE_GRACE if the client does not take them."""
        if self.closing:
            return
        self.closing = True
        self.pending.clear()
        if code == TOO_SLOW and self.writer is not None:
            self.writer.cancel()  # stuck waiting for the client to read: the close goes out after what it wrote
            self.writer = None
        self.pending.append(Closing(code, reason))
        self._wake()
        self.hub.loop.call_later(self.hub.close_grace, self.abort)

    def abort(self) -> None:
        if not self.ws.closed and self.request.transport is not None:
            self.request.transport.abort()

    def _wake(self) -> None:
        if self.writer is None:
            self.writer = self.hub.loop.create_task(self._flush())

    async def _flush(self) -> None:
        try:
            while self.pending:
                item = self.pending.popleft()
                if isinstance(item, Closing):
                    if item.reason is not None:
                        await self.ws.send_str(error_frame(item.reason))
                    code = item.reason.code if item.reason is not None else "realtime.too_slow"
                    await self.ws.close(code=item.code, message=code.encode())
                    return
                await self.ws.send_str(item)
        except (ConnectionError, RuntimeError, aiohttp.ClientError):  # the client went away
            log.debug("push to a closing socket failed", exc_info=True)
        finally:
            if self.writer is asyncio.current_task():
                self.writer = None


class AsyncHub:
    """Who is connected to this process, and the fan-out of events to them (all on the loop's thread)."""

    def __init__(self, rpc, loop: asyncio.AbstractEventLoop, queue_limit: int = 256, executor=None,
                 close_grace: float = CLOSE_GRACE):
        self.rpc = rpc
        self.close_grace = close_grace
        self.loop = loop
        self.queue_limit = queue_limit
        self.executor = executor or ThreadPoolExecutor(max_workers=8, thread_name_prefix="realtime-rpc")
        self.audiences = Audiences(rpc)
        self.sockets: dict[str, set[Connection]] = defaultdict(set)  # user id -> sockets
        self.sessions: dict[str, set[Connection]] = defaultdict(set)  # session id -> sockets
        self.events: asyncio.Queue = asyncio.Queue()
        self.dropped = 0  # sockets dropped for not reading

    # -- from the consumer's thread --------------------------------------------------------------------------
    def handle_event(self, event) -> None:
        """BroadcastConsumer's hand-off: the event goes to the loop, in the order it arrived."""
        self.loop.call_soon_threadsafe(self.events.put_nowait, event)

    # -- on the loop ---------------------------------------------------------------------------------------
    async def run(self) -> None:
        while True:
            event = await self.events.get()
            try:
                await self.handle(event)
            except Exception:  # one event's failure (an RPC timing out) must not stop the others
                log.warning("realtime event not delivered", exc_info=True, extra={"event_type": event.type})

    async def handle(self, event) -> None:
        if event.type == SESSION_ENDED or event.type in CALL_PRESENCE:
            dispatch(event, self)
            return
        await self.deliver(event.contract.routing_key, event_data(event))

    async def deliver(self, event_type: str, data: dict[str, Any]) -> int:
        self.audiences.heard(event_type, data)
        if not self.sockets:
            return 0
        try:
            if self.audiences.needs_asking(event_type, data):
                audience = await self.loop.run_in_executor(self.executor, self.audiences.lookup, event_type, data)
            else:
                audience = self.audiences.lookup(event_type, data)
        except DomainError:
            return 0
        return self.fan_out(event_type, payloads(event_type, data, audience))

    def fan_out(self, event_type: str, frames: dict[str, str]) -> int:
        sent = 0
        for user, frame in frames.items():
            for conn in list(self.sockets.get(user, ())):
                sent += conn.offer(frame)
        if sent:
            metrics.events_pushed.labels(event_type.split(".")[0]).inc(sent)
        return sent

    def connect(self, conn: Connection) -> None:
        self.sockets[conn.user_id].add(conn)
        self.sessions[conn.session_id].add(conn)
        metrics.websocket_connections.inc()

    def disconnect(self, conn: Connection) -> None:
        if self._unroute(conn):
            metrics.websocket_connections.dec()

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
CLIENT = web.AppKey("client", aiohttp.ClientSession)
CONSUMER = web.AppKey("consumer", object)


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
        conn.offer(json.dumps({"type": "ready", "user_id": conn.user_id}))
        async for message in ws:  # ends when the socket closes, from either side
            if message.type is aiohttp.WSMsgType.TEXT and message.data == "ping":
                conn.offer("pong")
    finally:
        expiry.cancel()
        hub.disconnect(conn)
        if conn.closing and conn.writer is not None:
            try:  # the close under way (bounded: abort() cuts it after CLOSE_GRACE)
                await asyncio.shield(conn.writer)
            except Exception:
                log.debug("closing a closed socket", exc_info=True)
        elif conn.writer is not None:
            conn.writer.cancel()
    return ws


# -- one origin: every other request goes to the gunicorn gateway behind this process ---------------------------
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
              "transfer-encoding", "upgrade", "host"}
FORWARDED = {"x-forwarded-for", "x-forwarded-host"}  # this process says who called; a client's own are dropped


async def proxy(request: web.Request) -> web.StreamResponse:
    headers = [(k, v) for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP | FORWARDED]
    headers.append(("X-Forwarded-For", request.remote or ""))
    headers.append(("X-Forwarded-Host", request.host))
    body = request.content if request.body_exists else None
    async with request.app[CLIENT].request(
        request.method, request.app[UPSTREAM] + request.rel_url.raw_path_qs, headers=headers, data=body,
        allow_redirects=False, auto_decompress=False,
    ) as upstream:
        response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
        for key, value in upstream.headers.items():
            if key.lower() not in HOP_BY_HOP:
                response.headers.add(key, value)
        response.headers.setdefault("Server", "sfera")  # else aiohttp names itself and its version
        if "Content-Length" not in upstream.headers and upstream.status not in (204, 304):
            response.enable_chunked_encoding()
        await response.prepare(request)
        async for chunk in upstream.content.iter_any():
            await response.write(chunk)
        await response.write_eof()
        return response


async def healthz(request: web.Request) -> web.Response:
    """The gateway's health (when this process fronts it) with this process's consumer added."""
    consumer = request.app.get(CONSUMER)
    ready = consumer is None or consumer.ready.is_set()
    checks: dict[str, Any] = {"realtime": "ok" if ready else "the realtime consumer is not connected to the broker"}
    healthy = ready
    if UPSTREAM in request.app:
        try:
            async with request.app[CLIENT].get(request.app[UPSTREAM] + "/healthz") as upstream:
                answer = await upstream.json()
            checks = {**answer.get("checks", {}), **checks}
            healthy = healthy and upstream.status == 200
        except (aiohttp.ClientError, ValueError) as exc:
            checks["gateway"] = f"unreachable: {exc}"
            healthy = False
    return web.json_response({"process": "gateway", "status": "ok" if healthy else "failing", "checks": checks},
                             status=200 if healthy else 503)


async def prometheus_metrics(request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})


def make_app(rpc, *, amqp_uri: str | None = None, upstream: str | None = None,
             queue_limit: int = 256, close_grace: float = CLOSE_GRACE) -> web.Application:
    """The realtime server; with ``amqp_uri`` it starts its broadcast consumer, with ``upstream`` it fronts the
    gunicorn gateway (every path but the socket, its own health and metrics goes there)."""
    app = web.Application()

    async def lifecycle(app: web.Application):
        hub = AsyncHub(rpc, asyncio.get_running_loop(), queue_limit, close_grace=close_grace)
        app[HUB] = hub
        runner = asyncio.create_task(hub.run())
        if amqp_uri:
            consumer = BroadcastConsumer(amqp_uri, hub)
            consumer.start()
            app[CONSUMER] = consumer
        if upstream:
            app[UPSTREAM] = upstream.rstrip("/")
            app[CLIENT] = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=env_int("SFERA_REALTIME_UPSTREAM_CONNECTIONS", 64)),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10), cookie_jar=aiohttp.DummyCookieJar())
        yield
        runner.cancel()
        if upstream:
            await app[CLIENT].close()
        hub.executor.shutdown(wait=False, cancel_futures=True)

    app.cleanup_ctx.append(lifecycle)
    app.router.add_get(PATH, realtime)
    if upstream:
        app.router.add_get("/healthz", healthz)
        app.router.add_get("/_realtime/metrics", prometheus_metrics)
        app.router.add_route("*", "/{tail:.*}", proxy)
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
    from gateway.rpc import RpcPool

    amqp_uri = settings().amqp_uri
    rpc = RpcPool(amqp_uri, size=env_int("SFERA_GATEWAY_RPC_POOL", 16), timeout=env_int("SFERA_RPC_TIMEOUT", 10))
    app = make_app(rpc, amqp_uri=amqp_uri, upstream=args.upstream,
                   queue_limit=env_int("SFERA_REALTIME_QUEUE", 256))
    web.run_app(app, host=args.host, port=args.port, access_log=None, print=None, backlog=4096,
                shutdown_timeout=5)


if __name__ == "__main__":
    main()
