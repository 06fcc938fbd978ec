"""The asyncio front's client of the gunicorn gateway behind it (issue #17, live chat delivery): a small pool of
keep-alive HTTP/1.1 connections, each an asyncio Protocol whose answers aiohttp's C response parser (llhttp) reads.

It replaces aiohttp's ClientSession in the proxy hop: a profile of the hop put half of the front's CPU a request
in the session's request and response objects (URL building, default headers, cookies, tracing, timers) that a
proxy does not use. What it keeps:

- a connection is reused only after a whole answer that did not say ``Connection: close``, and only once the
  request's body was sent whole; bytes from gunicorn while no request is out close it;
- an idle connection is let go after ``keepalive`` seconds, before gunicorn's keep-alive (2 s) closes it;
- request bodies are streamed (never read whole unless already whole in memory and small), answers are streamed
  (the payload is a StreamReader whose reader paces the socket);
- a connection that cannot be made is ``Unreachable`` (the front's 503), one cut or answered with garbage is
  ``UpstreamFailed`` (its 502, or the client's connection cut);
- one retry, on a new connection, of a request that failed on a reused connection before a byte of its answer came
  and whose body was not streamed (see ``Upstream.send``).
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import aiohttp
from aiohttp.base_protocol import BaseProtocol
from aiohttp.helpers import EMPTY_BODY_STATUS_CODES, set_exception
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.http_parser import HttpResponseParser, RawResponseMessage
from aiohttp.streams import EMPTY_PAYLOAD, StreamReader

READ_LIMIT = 1 << 16  # an answer's bytes buffered before its socket is paused (the payload's reader catches up)
CONNECT_TIMEOUT = 10.0
RETRY_WINDOW = 1.0  # seconds after which a request unanswered on a reused connection is not sent again


class UpstreamFailed(aiohttp.ClientError):
    """The gateway cut the connection or answered what is not HTTP."""


class Unreachable(UpstreamFailed):
    """No connection to the gateway could be made."""


class UpstreamConnection(BaseProtocol):
    """One connection to the gateway: one request at a time, its answer parsed by a fresh C parser."""

    def __init__(self, loop: asyncio.AbstractEventLoop, pool: Upstream):
        super().__init__(loop)
        self.pool = pool
        self.answer: asyncio.Future | None = None  # (message, payload) of the request out
        self.payload: StreamReader | None = None
        self.received = False  # a byte of the request's answer came
        self.reused = False
        self.idle_since = 0.0
        self.lost = False

    # -- asyncio.Protocol ------------------------------------------------------------------------------------
    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost = True
        self.pool.forget(self)
        parser, self._parser = self._parser, None
        failure = UpstreamFailed(f"the gateway closed the connection: {exc!r}" if exc else
                                 "the gateway closed the connection")
        if parser is not None:
            try:
                parser.feed_eof()  # an answer read until the connection's end ends here
            except Exception as error:  # an answer cut short
                if self.payload is not None:
                    set_exception(self.payload, failure, error)
        if self.answer is not None and not self.answer.done():
            self.answer.set_exception(failure)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        parser = self._parser
        if parser is None:  # nothing was asked: gunicorn does not speak first
            if data and self.transport is not None:
                self.transport.abort()
            return
        if data:
            self.received = True
        try:
            messages, _, _ = parser.feed_data(data)
        except HttpProcessingError as exc:
            self._fail(UpstreamFailed(f"the gateway's answer is not HTTP: {exc!r}"))
            return
        for message, payload in messages:
            if message.code in EMPTY_BODY_STATUS_CODES:
                if message.code < 200:  # 100 Continue and the like: the answer follows
                    continue
                payload = EMPTY_PAYLOAD
            self.payload = payload
            if self.answer is not None and not self.answer.done():
                self.answer.set_result((message, payload))

    def eof_received(self) -> bool:
        return False  # the transport closes; connection_lost ends the answer

    # -- the request -----------------------------------------------------------------------------------------
    def _fail(self, failure: UpstreamFailed) -> None:
        if self.answer is not None and not self.answer.done():
            self.answer.set_exception(failure)
        if self.payload is not None:
            set_exception(self.payload, failure)
        if self.transport is not None:
            self.transport.abort()

    def start(self, head: bytes, held: bytes | None, *, skip_body: bool) -> asyncio.Future:
        self._parser = HttpResponseParser(self, self._loop, READ_LIMIT, payload_exception=UpstreamFailed,
                                          response_with_body=not skip_body, read_until_eof=True,
                                          auto_decompress=False)
        self.answer = self._loop.create_future()
        self.payload, self.received = None, False
        assert self.transport is not None
        self.transport.write(head + held if held else head)
        return self.answer

    async def stream(self, body: StreamReader, chunked: bool) -> bool:
        """The request's body as it comes from the client (chunked when it has no length); True once sent whole,
        False when the gateway closed first (it refused the body: its answer says why). A body that stops coming
        (its client went away) cuts this connection: the answer fails."""
        chunks = body.iter_any().__aiter__()
        while True:
            try:
                chunk = await chunks.__anext__()
            except StopAsyncIteration:
                break
            except BaseException:  # the client's side: its body was cut (or the exchange let go)
                if self.transport is not None:
                    self.transport.abort()
                raise
            if self.transport is None or self.transport.is_closing():
                return False
            self.transport.write(b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk)
            try:
                await self._drain_helper()
            except ConnectionError:
                return False
        if self.transport is None or self.transport.is_closing():
            return False
        if chunked:
            self.transport.write(b"0\r\n\r\n")
        return True

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class Exchange:
    """A request's answer: its head (``message``) and its body (``payload``, read until its end); ``release``
    gives the connection back when it may carry another request, else closes it."""

    __slots__ = ("upstream", "conn", "message", "payload", "writer")

    def __init__(self, upstream: Upstream, conn: UpstreamConnection, message: RawResponseMessage,
                 payload: StreamReader, writer: asyncio.Task | None):
        self.upstream, self.conn, self.message, self.payload, self.writer = upstream, conn, message, payload, writer

    @property
    def status(self) -> int:
        return self.message.code

    def release(self) -> None:
        conn, writer = self.conn, self.writer
        sent = writer is None or (writer.done() and not writer.cancelled() and writer.exception() is None
                                  and writer.result())
        if writer is not None and not writer.done():
            writer.cancel()
        reusable = (sent and not conn.lost and not self.message.should_close and self.payload.is_eof()
                    and self.payload.exception() is None)
        conn._parser = None
        self.upstream.give_back(conn, reusable)


def settle(writer: asyncio.Task | None) -> None:
    """A body's writer stopped, its failure (the client's body cut: the exchange fails anyway) retrieved."""
    if writer is None:
        return
    if not writer.done():
        writer.cancel()
    elif not writer.cancelled():
        writer.exception()


class Upstream:
    """Keep-alive connections to ``url`` (http://host:port), at most ``limit`` at once, an idle one kept at most
    ``keepalive`` seconds."""

    def __init__(self, url: str, *, limit: int = 64, keepalive: float = 1.0):
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.host_header = parts.netloc.encode()
        self.limit, self.keepalive = limit, keepalive
        self.idle: list[UpstreamConnection] = []  # the most recently used last
        self.slots = asyncio.Semaphore(limit)
        self.sweeper: asyncio.TimerHandle | None = None
        self.closed = False

    def head(self, method: str, target: str, headers: list[tuple[str, str]]) -> bytes:
        lines = [f"{method} {target} HTTP/1.1", *(f"{name}: {value}" for name, value in headers)]
        return b"%b\r\nHost: %b\r\n\r\n" % ("\r\n".join(lines).encode("utf-8", "surrogateescape"), self.host_header)

    async def send(self, method: str, target: str, headers: list[tuple[str, str]], *, held: bytes | None = None,
                   stream: StreamReader | None = None, chunked: bool = False) -> Exchange:
        """The request (its body ``held`` whole, or ``stream``-ed as it comes) and its answer's head. The caller
        reads the payload and then ``release``-s the exchange."""
        loop = asyncio.get_running_loop()
        head = self.head(method, target, headers)
        skip_body = method == "HEAD"
        for attempt in (1, 2):
            await self.slots.acquire()
            try:
                conn = await self._connection(loop)
            except BaseException:
                self.slots.release()
                raise
            sent_at = loop.time()
            answer = conn.start(head, held, skip_body=skip_body)
            writer = loop.create_task(conn.stream(stream, chunked)) if stream is not None else None
            try:
                message, payload = await answer
            except BaseException as exc:
                settle(writer)
                conn._parser = None
                conn.close()
                self.give_back(conn, False)
                # Sent again once, on a new connection, when it failed on a connection kept alive before a byte of
                # its answer came and its body was not streamed (there is one to send again): gunicorn closes a
                # kept-alive connection unanswered when its keep-alive runs out -- it did not read the request
                # (the close resets it) -- and when its worker is killed mid-request, which the worker timeout
                # (30 s) does long after RETRY_WINDOW. A request it read and answered never comes here.
                if (attempt == 1 and isinstance(exc, UpstreamFailed) and conn.reused and not conn.received
                        and stream is None and loop.time() - sent_at < RETRY_WINDOW):
                    continue
                raise
            return Exchange(self, conn, message, payload, writer)
        raise AssertionError("unreachable")  # pragma: no cover

    async def fetch(self, method: str, target: str) -> tuple[int, bytes]:
        """A request without a body, its answer read whole."""
        exchange = await self.send(method, target, [])
        try:
            return exchange.status, await exchange.payload.read()
        finally:
            exchange.release()

    async def _connection(self, loop: asyncio.AbstractEventLoop) -> UpstreamConnection:
        now = loop.time()
        while self.idle:
            conn = self.idle.pop()
            if not conn.lost and now - conn.idle_since < self.keepalive:
                conn.reused = True
                return conn
            conn.close()
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(lambda: UpstreamConnection(loop, self), self.host, self.port),
                CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            raise Unreachable(f"the gateway at {self.host}:{self.port} is unreachable: {exc!r}") from exc
        conn.reused = False
        return conn

    def give_back(self, conn: UpstreamConnection, reusable: bool) -> None:
        self.slots.release()
        if not reusable or self.closed or conn.lost:
            conn.close()
            return
        loop = conn._loop
        conn.idle_since = loop.time()
        self.idle.append(conn)
        if self.sweeper is None:
            self.sweeper = loop.call_later(self.keepalive, self._sweep, loop)

    def forget(self, conn: UpstreamConnection) -> None:
        if conn in self.idle:
            self.idle.remove(conn)

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        """Idle connections past ``keepalive`` closed (the front lets go first, not gunicorn)."""
        self.sweeper = None
        now = loop.time()
        for conn in [c for c in self.idle if now - c.idle_since >= self.keepalive * 0.9]:
            self.idle.remove(conn)
            conn.close()
        if self.idle:
            self.sweeper = loop.call_later(self.keepalive - (now - self.idle[0].idle_since), self._sweep, loop)

    async def close(self) -> None:
        self.closed = True
        if self.sweeper is not None:
            self.sweeper.cancel()
        for conn in self.idle:
            conn.close()
        self.idle.clear()
