"""The asyncio front's client of the gunicorn gateway (gateway.upstream), over real sockets on loopback against
scripted stand-ins of gunicorn: when a connection is kept, reused, let go and when a request is sent again."""

from __future__ import annotations

import asyncio

import pytest

from gateway.upstream import Unreachable, Upstream, UpstreamFailed
from tools.devstack.infra import free_port


def answer(body: bytes = b"{}", *, status: str = "200 OK", close: bool = False) -> bytes:
    return (f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            + ("Connection: close\r\n" if close else "") + "\r\n").encode() + body


class Gateway:
    """A stand-in of gunicorn: each connection's requests (head and Content-Length body) are handed to ``script``
    (connection number, request number on it, head, body) which answers bytes to write, or None to close the
    connection without a word. ``closed``: when each connection's end was seen (loop time), and by whom."""

    def __init__(self, script):
        self.script, self.connections, self.requests, self.closed = script, 0, [], {}

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        number = self.connections = self.connections + 1
        loop = asyncio.get_running_loop()
        try:
            for n in range(1, 1000):
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    self.closed[number] = (loop.time(), "front")
                    return
                length = next((int(line.split(b":")[1]) for line in head.lower().split(b"\r\n")
                               if line.startswith(b"content-length:")), 0)
                body = await reader.readexactly(length)
                self.requests.append((number, head.split(b"\r\n")[0].decode(), body))
                reply = self.script(number, n, head, body)
                if reply is None:
                    self.closed[number] = (loop.time(), "gateway")
                    writer.transport.abort()
                    return
                writer.write(reply)
                await writer.drain()
                if b"connection: close" in reply.lower():
                    self.closed[number] = (loop.time(), "gateway")
                    writer.close()
                    return
        except ConnectionError:
            self.closed[number] = (loop.time(), "reset")

    async def __aenter__(self) -> str:
        self.port = free_port()
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", self.port)
        return f"http://127.0.0.1:{self.port}"

    async def __aexit__(self, *exc) -> None:
        self.server.close()


async def get(client: Upstream, target: str = "/x", method: str = "GET", held: bytes | None = None):
    headers = [("Content-Length", str(len(held)))] if held is not None else []
    exchange = await client.send(method, target, headers, held=held)
    try:
        return exchange.status, await exchange.payload.read()
    finally:
        exchange.release()


def test_a_connection_is_reused_after_a_whole_answer_and_not_after_one_that_says_close():
    async def main():
        gateway = Gateway(lambda c, n, head, body: answer(b'{"n": %d}' % n, close=b"/close" in head))
        async with gateway as url:
            client = Upstream(url, keepalive=5)
            assert await get(client) == (200, b'{"n": 1}')
            assert await get(client, held=b"abc", method="POST") == (200, b'{"n": 2}')
            assert await get(client, "/close") == (200, b'{"n": 3}')
            assert await get(client) == (200, b'{"n": 1}')
            await client.close()
        assert gateway.connections == 2
        assert [r[:2] for r in gateway.requests] == [(1, "GET /x HTTP/1.1"), (1, "POST /x HTTP/1.1"),
                                                     (1, "GET /close HTTP/1.1"), (2, "GET /x HTTP/1.1")]
        assert gateway.requests[1][2] == b"abc"

    asyncio.run(main())


def test_an_idle_connection_is_let_go_by_the_front_before_gunicorns_keepalive():
    """CI: an upload's answer lost ("Server disconnected", 502): a request went out on a connection gunicorn was
    closing after its keep-alive (2 s). The front closes its idle ones first (after UPSTREAM_KEEPALIVE)."""
    async def main():
        gateway = Gateway(lambda c, n, head, body: answer())
        async with gateway as url:
            loop = asyncio.get_running_loop()
            client = Upstream(url, keepalive=0.3)
            await get(client)
            idle_from = loop.time()
            await asyncio.sleep(0.6)
            assert 1 in gateway.closed, "the idle connection was kept"
            when, by = gateway.closed[1]
            assert by == "front" and 0.2 < when - idle_from < 0.5
            await get(client)
            assert gateway.connections == 2
            await client.close()

    asyncio.run(main())


@pytest.mark.parametrize("held", [None, b'{"text": "hi"}'])
def test_a_request_lost_on_a_reused_connection_before_any_answer_is_sent_once_more_on_a_new_one(held):
    """gunicorn closing a kept-alive connection as the request arrives (it never read it): sent again, once."""
    async def main():
        gateway = Gateway(lambda c, n, head, body: None if (c, n) == (1, 2) else answer(b'{"c": %d}' % c))
        async with gateway as url:
            client = Upstream(url, keepalive=5)
            await get(client)
            assert await get(client, method="POST", held=held) == (200, b'{"c": 2}')
            await client.close()
        assert [r[0] for r in gateway.requests] == [1, 1, 2]

    asyncio.run(main())


def test_a_request_lost_on_a_new_connection_or_twice_is_a_failure_not_sent_again():
    async def main():
        gateway = Gateway(lambda c, n, head, body: None)  # every connection closed on its first request
        async with gateway as url:
            client = Upstream(url, keepalive=5)
            with pytest.raises(UpstreamFailed):
                await get(client)
            assert gateway.connections == 1  # a new connection: not sent again

        gateway = Gateway(lambda c, n, head, body: answer() if (c, n) == (1, 1) else None)
        async with gateway as url:
            client = Upstream(url, keepalive=5)
            await get(client)
            with pytest.raises(UpstreamFailed):
                await get(client)
            assert gateway.connections == 2  # once more only
            await client.close()

    asyncio.run(main())


def test_an_answer_begun_then_cut_is_a_failure_and_its_connection_is_not_kept():
    async def cut():
        port = free_port()

        async def handle(reader, writer):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
            await writer.drain()
            writer.transport.abort()

        server = await asyncio.start_server(handle, "127.0.0.1", port)
        client = Upstream(f"http://127.0.0.1:{port}", keepalive=5)
        exchange = await client.send("GET", "/x", [])
        with pytest.raises(UpstreamFailed):
            await asyncio.wait_for(exchange.payload.read(), 5)
        exchange.release()
        assert client.idle == []
        await client.close()
        server.close()

    asyncio.run(cut())


def test_a_gateway_not_listening_is_unreachable():
    async def main():
        client = Upstream(f"http://127.0.0.1:{free_port()}")
        with pytest.raises(Unreachable):
            await get(client)
        assert client.slots._value == client.limit  # its slot given back
        await client.close()

    asyncio.run(main())


def test_a_large_answer_is_streamed_as_it_comes():
    """A download: its chunks reach the reader before the gateway has sent the rest."""
    async def main():
        port = free_port()
        go_on = asyncio.Event()

        async def handle(reader, writer):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            writer.write(b"%x\r\n%b\r\n" % (1 << 20, b"a" * (1 << 20)))
            await writer.drain()
            await go_on.wait()
            writer.write(b"%x\r\n%b\r\n0\r\n\r\n" % (1 << 20, b"b" * (1 << 20)))
            await writer.drain()

        server = await asyncio.start_server(handle, "127.0.0.1", port)
        client = Upstream(f"http://127.0.0.1:{port}", keepalive=5)
        exchange = await client.send("GET", "/file", [])
        first = b""
        while len(first) < 1 << 20:
            first += await asyncio.wait_for(exchange.payload.readany(), 5)
        assert first == b"a" * (1 << 20)  # before the rest was sent
        go_on.set()
        assert await asyncio.wait_for(exchange.payload.read(), 5) == b"b" * (1 << 20)
        exchange.release()
        assert len(client.idle) == 1  # a whole chunked answer: kept
        await client.close()
        server.close()

    asyncio.run(main())


def test_bytes_from_the_gateway_while_nothing_is_asked_close_the_connection():
    async def main():
        port = free_port()
        connections = []

        async def handle(reader, writer):
            connections.append(writer)
            await reader.readuntil(b"\r\n\r\n")
            writer.write(answer())
            await writer.drain()
            await asyncio.sleep(0.1)
            writer.write(b"HTTP/1.1 200 OK\r\n")  # nothing was asked
            await writer.drain()
            await reader.read()

        server = await asyncio.start_server(handle, "127.0.0.1", port)
        client = Upstream(f"http://127.0.0.1:{port}", keepalive=5)
        await get(client)
        await asyncio.sleep(0.3)
        assert client.idle == []
        await get(client)
        assert len(connections) == 2
        await client.close()
        server.close()

    asyncio.run(main())


def through_the_front(routes, scenario):
    """``scenario(front_port)`` with the front before an aiohttp app of ``routes`` (method, path, handler)."""
    from aiohttp import web

    from gateway.realtime_server import make_app, start

    class NoRpc:
        def call(self, *args, **kwargs):  # pragma: no cover - no socket opens
            raise AssertionError(args)

    async def main():
        backend = web.Application(client_max_size=1 << 30)
        for method, path, handler in routes:
            backend.router.add_route(method, path, handler)
        runner = web.AppRunner(backend)
        await runner.setup()
        upstream_port, port = free_port(), free_port()
        await web.TCPSite(runner, "127.0.0.1", upstream_port).start()
        front = await start(make_app(NoRpc(), upstream=f"http://127.0.0.1:{upstream_port}"), "127.0.0.1", port)
        try:
            await scenario(port)
        finally:
            await front.cleanup()
            await runner.cleanup()

    asyncio.run(main())


def test_bodies_and_answers_of_every_framing_pass_through_the_front_whole():
    """A chunked upload (no length: streamed on chunked), an upload of 20 MB (streamed with its length), a download
    of 20 MB with a length and one chunked, a HEAD (a length, no body) and a 204, each on one keep-alive connection
    through the front."""
    import hashlib

    from aiohttp import ClientSession, web

    big = bytes(range(256)) * (80 << 10)  # 20 MB

    async def upload(request):
        digest, size = hashlib.sha256(), 0
        async for chunk in request.content.iter_any():
            digest.update(chunk)
            size += len(chunk)
        return web.json_response({"size": size, "sha": digest.hexdigest(), "chunked": "Content-Length" not in
                                  request.headers}, status=201)

    async def download(request):
        if request.query.get("chunked"):
            response = web.StreamResponse()
            response.enable_chunked_encoding()
            await response.prepare(request)
            for at in range(0, len(big), 1 << 20):
                await response.write(big[at:at + (1 << 20)])
            await response.write_eof()
            return response
        return web.Response(body=big, content_type="application/octet-stream")

    async def nothing(request):
        return web.Response(status=204)

    async def scenario(port):
        base = f"http://127.0.0.1:{port}"

        async def chunks():
            for at in range(0, 3 << 20, 1 << 20):
                yield big[at:at + (1 << 20)]

        async with ClientSession() as session:
            async with session.post(f"{base}/upload", data=chunks()) as response:
                assert response.status == 201
                assert await response.json() == {"size": 3 << 20, "sha": hashlib.sha256(big[:3 << 20]).hexdigest(),
                                                  "chunked": True}
            async with session.put(f"{base}/upload", data=big) as response:
                assert await response.json() == {"size": len(big), "sha": hashlib.sha256(big).hexdigest(),
                                                  "chunked": False}
            for query in ("", "?chunked=1"):
                async with session.get(f"{base}/download{query}") as response:
                    assert response.status == 200 and await response.read() == big
                    assert ("Content-Length" in response.headers) == (not query)
            async with session.head(f"{base}/download") as response:
                assert response.status == 200 and response.headers["Content-Length"] == str(len(big))
                assert await response.read() == b""
            async with session.delete(f"{base}/nothing") as response:
                assert response.status == 204 and await response.read() == b""

    through_the_front([("POST", "/upload", upload), ("PUT", "/upload", upload), ("GET", "/download", download),
                       ("HEAD", "/download", download),
                       ("DELETE", "/nothing", nothing)], scenario)


def test_an_upload_reaches_the_gateway_as_it_comes_not_read_whole_first():
    """The gateway reads an upload's first megabyte while its client has not sent the rest (the front holds a
    body whole only when it is small and came whole with its head)."""
    from aiohttp import web

    size, first = 10 << 20, 1 << 20
    got_first = asyncio.Event()

    async def upload(request):
        received = 0
        async for chunk in request.content.iter_any():
            received += len(chunk)
            if received >= first:
                got_first.set()
        return web.json_response({"size": received}, status=201)

    async def scenario(port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size + b"a" * first)
        await writer.drain()
        await asyncio.wait_for(got_first.wait(), 5)  # before the rest was sent
        writer.write(b"a" * (size - first))
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 201 "), head
        assert b'"size": %d' % size in await asyncio.wait_for(reader.read(200), 5)
        writer.close()

    through_the_front([("POST", "/upload", upload)], scenario)
