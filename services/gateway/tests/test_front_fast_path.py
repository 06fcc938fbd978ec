"""The front's plain requests below aiohttp's web layer (``gateway.front_proxy``, issue #17): over real sockets on
loopback, each request of a connection gets the same answer (but its date, its headers' order and their names'
case) as it gets from aiohttp's web layer (SFERA_FRONT_FAST_PATH=no), whatever comes before and after it on the
connection."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
import uvloop
from aiohttp import web

from gateway.http_refusals import HEADER_FIELD_MAX, HEADERS_MAX, REQUEST_LINE_MAX
from gateway.realtime_server import FrontRunner, make_app, start
from tools.devstack.infra import free_port

BIG = bytes(range(256)) * 400  # 100 KiB: over the whole answer's bound


class NoRpc:
    def call(self, service, method, **kwargs):  # pragma: no cover - no socket opens in these tests
        raise AssertionError((service, method))


async def gateway(request: web.Request) -> web.StreamResponse:
    """The gateway's stand-in: what it was asked (method, target, the forwarded headers, the body), or an answer
    of the framing the path names."""
    kind = request.path.rsplit("/", 1)[-1]
    if kind == "big":
        return web.Response(body=BIG, content_type="application/octet-stream")
    if kind == "chunked":
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for at in range(0, len(BIG), 30000):
            await response.write(BIG[at:at + 30000])
        await response.write_eof()
        return response
    if kind == "nothing":
        return web.Response(status=204, headers={"X-Request-Id": "r"})
    if kind == "close":
        return web.json_response({"closing": True}, headers={"Connection": "close"})
    seen = {"method": request.method, "target": request.raw_path, "body": (await request.read()).decode(),
            "headers": sorted((k, v) for k, v in request.headers.items() if k not in ("Content-Length", "Host"))}
    return web.json_response(seen, status=201 if request.method == "POST" else 200,
                             headers={"X-Content-Type-Options": "nosniff", "Set-Cookie": "a=1"})


POST = b"POST /api/v1/chats/c/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" \
       b"X-Forwarded-For: 10.0.0.9\r\nContent-Length: 13\r\n\r\n{\"text\": \"a\"}"
GET = b"GET /api/v1/me?q=%D0%BF&x=1 HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n"
CONNECTIONS = {
    "plain ones": [POST, GET, b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n", b"GET /chunked HTTP/1.1\r\nHost: x\r\n\r\n",
                   b"DELETE /nothing HTTP/1.1\r\nHost: x\r\n\r\n", POST],
    "then a HEAD, handed over": [POST, b"HEAD /big HTTP/1.1\r\nHost: x\r\n\r\n", GET, POST],
    "then a method llhttp does not know": [GET, b"PURGE2 /c HTTP/1.1\r\nHost: x\r\n\r\n", POST],
    "then an Expect": [POST, POST.replace(b"Host: x\r\n", b"Host: x\r\nExpect: 100-continue\r\n"), GET],
    "pipelined": [POST + GET, GET],
    "a body after its head": [(POST[:-13], POST[-13:]), GET],
    "HTTP/1.0": [GET.replace(b"HTTP/1.1", b"HTTP/1.0"), GET],
    "a path the front decodes": [b"GET /api/v1/./me HTTP/1.1\r\nHost: x\r\n\r\n", b"GET /heal%74hz HTTP/1.1\r\n\r\n"],
    "no host": [b"GET /api/v1/me HTTP/1.1\r\n\r\n", GET],
    "the gateway closes": [b"GET /close HTTP/1.1\r\nHost: x\r\n\r\n", GET],
    "the client closes": [GET.replace(b"Accept", b"Connection: close\r\nAccept")],
    # gunicorn's limits as it measures them, kept alive: the request line (the C parser counts the target), the
    # header count and a header's line
    **{f"a request line {over} over": [b"PATCH /api/v1/me?" + b"a" * (REQUEST_LINE_MAX - 26 + over) + b" HTTP/1.1\r\n"
                                       b"Host: x\r\n\r\n", GET] for over in (0, 1)},
    **{f"{count} headers": [b"GET /api/v1/me HTTP/1.1\r\nHost: x\r\n" + b"".join(
        b"X-%d: 1\r\n" % n for n in range(count - 3)) + b"\r\n", GET] for count in (HEADERS_MAX - 2, HEADERS_MAX - 1)},
    **{f"a header line {over} over": [b"GET /api/v1/me HTTP/1.1\r\nHost: x\r\nX-Big:  " + b"a" * (
        HEADER_FIELD_MAX - 8 + over) + b"\r\n\r\n", GET] for over in (0, 1)},
}


async def answer_on(reader: asyncio.StreamReader, head_only: bool = False) -> bytes:
    """One answer, its Date blanked (the two paths answer at different seconds)."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    if head.startswith(b"HTTP/1.1 100 "):  # Expect's: the answer follows
        return head + await answer_on(reader, head_only)
    lines = [b"Date: -" if line.lower().startswith(b"date:") else line for line in head.split(b"\r\n")]
    # names are case-insensitive (aiohttp's web layer spells those it knows its own way), their order is no part of
    # the answer
    lines = [lines[0], *sorted(name.lower() + b":" + value for name, _, value in
                               (line.partition(b":") for line in lines[1:-2])), b"", b""]
    lower = head.lower()
    body = b""
    if head_only or head.startswith((b"HTTP/1.1 204", b"HTTP/1.1 304")):
        pass
    elif b"transfer-encoding: chunked" in lower:
        while size := int((await reader.readuntil(b"\r\n"))[:-2], 16):
            body += (await reader.readexactly(size + 2))[:-2]
        await reader.readexactly(2)
    else:
        at = lower.find(b"content-length:")
        body = await reader.readexactly(int(lower[at + 15:].split(b"\r\n")[0]))
    return b"\r\n".join(lines) + body


async def converse(port: int, requests: list) -> list[bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    answers = []
    try:
        for request in requests:
            pieces = request if isinstance(request, tuple) else (request,)
            for piece in pieces:
                writer.write(piece)
                await writer.drain()
                await asyncio.sleep(0.02)
            for _ in range(pieces[0].count(b" HTTP/1.")):
                answers.append(await answer_on(reader, head_only=pieces[0].startswith(b"HEAD")))
    except (asyncio.IncompleteReadError, ConnectionError):
        answers.append(b"(closed)")
    writer.close()
    return answers


def run(main, loop: str):
    """``main()`` on the loop the front's process runs on (uvloop) or on asyncio's."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop if loop == "uvloop" else None) as runner:
        return runner.run(asyncio.wait_for(main(), 60))


@contextlib.asynccontextmanager
async def front_before(*routes):
    """A front (this process's loop) before a stub gateway answering ``routes`` ((path, handler) pairs) and
    ``gateway`` for every other path: yields the front's runner and port; both stopped after (the front only if
    the test did not stop it itself)."""
    backend = web.Application()
    for path, handler in (*routes, (r"/{tail:[\s\S]*}", gateway)):
        backend.router.add_route("*", path, handler)
    upstream, upstream_port, port = FrontRunner(backend), free_port(), free_port()
    await upstream.setup()
    await web.TCPSite(upstream, "127.0.0.1", upstream_port).start()
    front = await start(make_app(NoRpc(), upstream=f"http://127.0.0.1:{upstream_port}"), "127.0.0.1", port)
    try:
        yield front, port
    finally:
        if front.server is not None:
            await front.cleanup()
        await upstream.cleanup()


def answers_through_the_front(fast: bool, monkeypatch, loop: str = "asyncio") -> dict[str, list[bytes]]:
    monkeypatch.setenv("SFERA_FRONT_FAST_PATH", "yes" if fast else "no")

    async def main():
        async with front_before() as (_, port):
            return {name: await converse(port, requests) for name, requests in CONNECTIONS.items()}

    return run(main, loop)


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_each_request_gets_the_answer_the_web_layer_gives_whichever_path_it_takes(monkeypatch, loop):
    fast, slow = answers_through_the_front(True, monkeypatch, loop), answers_through_the_front(False, monkeypatch)
    for name in CONNECTIONS:
        assert fast[name] == slow[name], name
    assert [answer[:12] for name in ("a request line 0 over", "a request line 1 over") for answer in fast[name]] == [
        b"HTTP/1.1 200", b"HTTP/1.1 200", b"HTTP/1.1 414", b"(closed)"]  # at the limit passed, past it refused
    assert b'"target": "/api/v1/me?q=%D0%BF&x=1"' in fast["plain ones"][1]
    assert b"X-Forwarded-For" in fast["plain ones"][0] and b"10.0.0.9" not in fast["plain ones"][0]


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
@pytest.mark.parametrize("request_bytes", [POST, GET])
def test_a_plain_request_is_answered_without_the_web_layer(monkeypatch, request_bytes, loop):
    """The fast path is taken (the connection stays a FrontConnection) for a chat post and a GET."""
    monkeypatch.setenv("SFERA_FRONT_FAST_PATH", "yes")

    async def main():
        async with front_before() as (front, port):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request_bytes)
            assert (await answer_on(reader)).startswith(b"HTTP/1.1 20")
            assert [type(c).__name__ for c in front.server.connections] == ["FrontConnection"]
            writer.close()

    run(main, loop)


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_the_fronts_shutdown_answers_a_request_out_and_closes_idle_connections(monkeypatch, loop):
    """A deploy stops the front: a connection kept alive between requests is closed, one whose request is at the
    gateway gets its answer first, then is closed."""
    monkeypatch.setenv("SFERA_FRONT_FAST_PATH", "yes")

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(0.5)
        return web.json_response({"slow": True})

    async def main():
        async with front_before(("/slow", slow)) as (front, port):
            idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", port)
            idle_writer.write(GET)
            assert (await answer_on(idle_reader)).startswith(b"HTTP/1.1 200")
            busy_reader, busy_writer = await asyncio.open_connection("127.0.0.1", port)
            busy_writer.write(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
            await asyncio.sleep(0.1)
            stopping = asyncio.ensure_future(front.cleanup())
            assert await asyncio.wait_for(idle_reader.read(), 5) == b""  # closed
            assert b'"slow": true' in await answer_on(busy_reader)
            assert await asyncio.wait_for(busy_reader.read(), 5) == b""
            await stopping

    run(main, loop)
