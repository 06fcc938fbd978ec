"""The front's plain proxied requests below aiohttp's web layer (issue #17: the front's CPU a chat post).

A connection to the front starts as a ``FrontConnection``: a request that is plain -- HTTP/1.1 kept alive, whole in
hand with its body (at most ``WHOLE_BODY_MAX``), for the gateway (not the socket's path nor the front's own), with
a Host and no Expect -- goes to the gateway as ``proxy`` would send it, and the gateway's answer is written back
as bytes (the web layer's router, middleware, request and response objects were the largest Python cost left in
the hop). Anything else -- a WebSocket upgrade, a body still coming, a request the C parser refuses or reads near
a limit, a pipelined request -- hands the connection, from that request's first byte on, to aiohttp's handler
(``FrontHandler``), which answers it and every later request of the connection as before.
"""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp.base_protocol import BaseProtocol
from aiohttp.helpers import rfc822_formatted_time
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.http_parser import HttpRequestParser, HttpVersion11
from aiohttp.web_protocol import RequestPayloadError

from gateway.http_refusals import (
    HEADER_FIELD_MAX,
    HEADERS_MAX,
    REQUEST_LINE_MAX,
    SERVER_NAME,
    near_a_limit,
    refusal,
)
from gateway.upstream import Unreachable, Upstream
from shared.observability.logging import get_logger

log = get_logger("gateway.front_proxy")

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
              "transfer-encoding", "upgrade", "host", "expect"}  # Expect: the front answers 100 Continue itself
FORWARDED = {"x-forwarded-for", "x-forwarded-host"}  # this process says who called; a client's own are dropped
# unless this process is itself behind a proxy it trusts (SFERA_TRUST_FORWARDED_FOR=yes, as the gateway reads it):
# then the caller's X-Forwarded-For is kept, this hop's address added after it
DROPPED = HOP_BY_HOP | FORWARDED
ANSWER_DROPPED = {name.encode() for name in HOP_BY_HOP}
WHOLE_BODY_MAX = 64 << 10  # a request body this small that came whole with its head is sent with it
WHOLE_ANSWER_MAX = 64 << 10  # an answer this small is read whole before the client sees any of it
KEEPALIVE = 3630.0  # seconds an idle client connection is kept (aiohttp's handler keeps one as long)
READ_LIMIT = 2 ** 16
# the front's own answers when the gateway behind it does not answer (status, code, message), on either path
UNREACHABLE = (503, "service.unavailable", "A service is not answering; try again shortly.")
FAILED = (502, "service.failed", "A service failed to answer this request.")


def forwarded_headers(headers, remote: str, host: str, trust_forwarded: bool) -> list[tuple[str, str]]:
    """A request's headers as they go to the gateway, on either path (``FrontConnection`` or the web layer's
    ``proxy``): hop-by-hop and forwarding ones dropped; this hop's X-Forwarded-For (after the caller's own only
    when this process trusts its caller) and X-Forwarded-Host added."""
    sent = [(k, v) for k, v in headers.items() if k.lower() not in DROPPED]
    forwarded = ", ".join(headers.getall("X-Forwarded-For", [])) if trust_forwarded else ""
    sent.append(("X-Forwarded-For", f"{forwarded}, {remote}" if forwarded else remote))
    sent.append(("X-Forwarded-Host", host))
    return sent


class FrontConnection(BaseProtocol):
    """One client connection while its requests are plain; ``hand_over`` makes it aiohttp's for good."""

    def __init__(self, manager, loop: asyncio.AbstractEventLoop, upstream: Upstream, own_paths: frozenset[str],
                 trust_forwarded: bool, handler_factory):
        super().__init__(loop)
        self.manager, self.upstream, self.own_paths = manager, upstream, own_paths
        self.trust_forwarded, self.handler_factory = trust_forwarded, handler_factory
        self.parser = HttpRequestParser(self, loop, READ_LIMIT, max_line_size=REQUEST_LINE_MAX,
                                        max_field_size=HEADER_FIELD_MAX, max_headers=HEADERS_MAX,
                                        payload_exception=RequestPayloadError, auto_decompress=False)
        self.head = bytearray()  # the bytes since the last request ended
        self.early = bytearray()  # bytes that came while a request was out (pipelining): read after its answer
        self.busy: asyncio.Task | None = None
        self.remote = ""
        self.idle: asyncio.TimerHandle | None = None
        self.idle_until = 0.0  # when an idle connection is closed (re-armed by each answer, checked by one timer)
        self.handed = False
        self._task_handler = None  # what aiohttp's server asks of a connection it tracks

    # -- asyncio.Protocol ------------------------------------------------------------------------------------
    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self.manager.connection_made(self, transport)  # the server's shutdown closes it
        peer = transport.get_extra_info("peername")
        self.remote = str(peer[0]) if isinstance(peer, (list, tuple)) else str(peer or "")
        self.idle_until = self._loop.time() + KEEPALIVE
        self.idle = self._loop.call_at(self.idle_until, self._idle_too_long)

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self.handed:
            self.manager.connection_lost(self, exc)
        if self.idle is not None:
            self.idle.cancel()
        if self.busy is not None:
            self.busy.cancel()
        super().connection_lost(exc)

    def eof_received(self) -> bool:
        return False

    def data_received(self, data: bytes) -> None:
        if self.busy is not None:
            self.early += data
            if len(self.early) > READ_LIMIT:
                self.pause_reading()  # read on after the answer out
            return
        self.head += data
        try:
            messages, upgraded, _ = self.parser.feed_data(data)
        except HttpProcessingError:
            self.hand_over()
            return
        if not messages:
            return  # a head still arriving
        if len(messages) != 1 or upgraded or not self._plain(*messages[0]):
            self.hand_over()

    # -- a plain request -------------------------------------------------------------------------------------
    def _plain(self, message, payload) -> bool:
        """Whether the request is plain (see the module) and whole in ``head``; if so it is sent on its way."""
        if (message.version != HttpVersion11 or message.should_close or message.chunked or message.method == "HEAD"
                or not payload.is_eof() or near_a_limit(message)):  # near a limit: gunicorn's measure decides
            return False
        headers = message.headers
        host = headers.get("Host")
        if host is None or "Expect" in headers or message.url.raw_path_qs != message.path:
            return False
        if message.url.path in self.own_paths:
            return False
        length = int(headers.get("Content-Length", 0))
        end = self.head.find(b"\r\n\r\n") + 4
        if end < 4 or length > WHOLE_BODY_MAX or end + length != len(self.head):
            return False  # the head's end not where llhttp found it, or more than this request: aiohttp reads it
        body = bytes(self.head[end:]) if length else None
        self.head = bytearray()
        sent = forwarded_headers(headers, self.remote, host, self.trust_forwarded)
        self.busy = self._loop.create_task(self._exchange(message.method, message.path, sent, body))
        return True

    async def _exchange(self, method: str, target: str, headers: list[tuple[str, str]], body: bytes | None) -> None:
        try:
            await self._answer(method, target, headers, body)
        except ConnectionError:  # the client went away
            self._abort()
            return
        self.busy = None
        if self.transport is None or self.transport.is_closing():
            return
        self.idle_until = self._loop.time() + KEEPALIVE
        if self.early:
            early, self.early = bytes(self.early), bytearray()
            if self._reading_paused:
                self.resume_reading()
            self.data_received(early)

    async def _answer(self, method: str, target: str, headers: list[tuple[str, str]], body: bytes | None) -> None:
        """The gateway's answer written to the client as ``proxy`` writes it (``whole_answer`` or streamed)."""
        exchange = None
        try:
            exchange = await self.upstream.send(method, target, headers, held=body)
            answer = exchange.message
            length = answer.headers.get("Content-Length")
            empty = answer.code in (204, 304) or answer.code < 200
            if empty or (length is not None and int(length) <= WHOLE_ANSWER_MAX):
                data = b"" if empty else await exchange.payload.read()
                self._write(answer_head(answer, None if empty else len(data)) + data)
                await self._drain_helper()
            else:
                self._write(answer_head(answer, int(length) if length is not None else -1))
                await self._stream(exchange.payload, chunked=length is None)
        except Unreachable:
            log.warning("the gateway behind the front is unreachable", exc_info=True)
            self._write(error_answer(*UNREACHABLE))
        except (TimeoutError, aiohttp.ClientError):
            if exchange is not None:  # its answer had begun: the client's connection is cut the same way
                log.info("the gateway cut a proxied answer; its client's connection is cut too", exc_info=True)
                raise ConnectionResetError("the gateway cut a proxied answer") from None
            log.warning("the gateway behind the front failed to answer", exc_info=True)
            self._write(error_answer(*FAILED))
        finally:
            if exchange is not None:
                exchange.release()

    async def _stream(self, payload, chunked: bool) -> None:
        async for chunk in payload.iter_any():
            self._write(b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk)
            await self._drain_helper()
        if chunked:
            self._write(b"0\r\n\r\n")

    def _write(self, data: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            raise ConnectionResetError("the client went away")
        self.transport.write(data)

    def _abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def _idle_too_long(self) -> None:
        self.idle = None
        if self.transport is None or self.handed:
            return
        now = self._loop.time()
        if self.busy is None and now >= self.idle_until:
            self.transport.close()
            return
        self.idle = self._loop.call_at(max(self.idle_until, now + 1.0), self._idle_too_long)

    # -- anything else ---------------------------------------------------------------------------------------
    def hand_over(self) -> None:
        """The connection is aiohttp's from the request being read on: its handler reads it from its first byte."""
        self.handed = True
        if self.idle is not None:
            self.idle.cancel()
            self.idle = None
        transport, head = self.transport, bytes(self.head)
        self.manager.connection_lost(self, None)
        handler = self.handler_factory()
        transport.set_protocol(handler)
        handler.connection_made(transport)
        if self._reading_paused:
            transport.resume_reading()
        handler.data_received(head)

    def close(self) -> None:
        """The server stops taking requests: an idle connection closes now, a busy one after its answer."""
        if self.busy is None and self.transport is not None:
            self.transport.close()

    async def shutdown(self, timeout: float | None = 15.0) -> None:
        """The server's shutdown: a request out gets ``timeout`` to be answered, then the connection closes."""
        if self.busy is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self.busy), timeout)
            except (TimeoutError, asyncio.CancelledError, ConnectionError):
                pass
        if self.transport is not None:
            self.transport.close()


def answer_head(answer, length: int | None) -> bytes:
    """The gateway's status line and headers as the client receives them: hop-by-hop ones dropped, the body's
    framing said again (``length``: the whole body's, -1 chunked, None no body), the date and the server added
    when the gateway did not say them."""
    lines = [b"HTTP/1.1 %d %s" % (answer.code, answer.reason.encode("latin-1", "replace"))]
    seen = set()
    for name, value in answer.raw_headers:
        lowered = name.lower()
        if lowered in ANSWER_DROPPED or lowered == b"content-length":
            continue
        seen.add(lowered)
        lines.append(name + b": " + value)
    if length is not None and length >= 0:
        lines.append(b"Content-Length: %d" % length)
        if length and b"content-type" not in seen:
            lines.append(b"Content-Type: application/octet-stream")
    elif length is not None:
        lines.append(b"Transfer-Encoding: chunked")
        if b"content-type" not in seen:
            lines.append(b"Content-Type: application/octet-stream")
    if b"date" not in seen:
        lines.append(b"Date: " + rfc822_formatted_time().encode())
    if b"server" not in seen:
        lines.append(b"Server: " + SERVER_NAME.encode())
    return b"\r\n".join(lines) + b"\r\n\r\n"


def error_answer(status: int, code: str, message: str) -> bytes:
    """An answer of the front itself in the API's error shape (``front_error``'s, as bytes)."""
    body, headers = refusal(status, message, code)
    reason = {502: b"Bad Gateway", 503: b"Service Unavailable"}[status]
    lines = [b"HTTP/1.1 %d %s" % (status, reason)]
    lines += [f"{name}: {value}".encode() for name, value in headers.items() if name.lower() != "content-length"]
    lines += [b"Content-Length: %d" % len(body), b"Date: " + rfc822_formatted_time().encode(),
              b"Server: " + SERVER_NAME.encode()]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body
