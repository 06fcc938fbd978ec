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
