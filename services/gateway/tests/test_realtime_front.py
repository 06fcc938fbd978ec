"""The asyncio realtime server as the gateway's public port (issue #17) answers as gunicorn does, over real sockets
on loopback: its own refusals (414, 431) in the one error shape with the security headers, any method token passed
on to the gateway behind it, a gateway that does not answer is a 503/502 in the same shape."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest
from aiohttp import web

from gateway.http_refusals import HEADER_FIELD_MAX, HEADERS_MAX, REQUEST_LINE_MAX
from gateway.realtime_server import FrontRunner, make_app, start
from tools.devstack.infra import free_port


class Rpc:
    def call(self, service, method, **kwargs):  # pragma: no cover - no socket opens in these tests
        raise AssertionError((service, method))


async def raw(port: int, request: bytes) -> tuple[bytes, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)  # the front closes after its answer
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    return head, body


def through_front(scenario, *, upstream_alive: bool = True, roomy_upstream: bool = False):
    """``scenario(front_port, seen)`` with the front before a gateway that records each request it gets in
    ``seen`` and answers 405 with its method (as Flask answers a method it does not know); ``roomy_upstream``: the
    gateway's stand-in takes requests over the front's limits (to see what the front passes on at its limits)."""

    async def main():
        seen: list[tuple[str, str]] = []

        async def gateway(request: web.Request) -> web.Response:
            seen.append((request.method, request.path_qs))
            return web.json_response({"method": request.method, "forwarded_for": request.headers.get(
                "X-Forwarded-For")}, status=405)

        # the gateway's stand-in reads any method as gunicorn does (the FrontRunner's parser), it is not the front

        upstream_port = free_port()
        upstream = None
        if upstream_alive:
            backend = web.Application()
            backend.router.add_route("*", r"/{tail:[\s\S]*}", gateway)
            upstream = (web.AppRunner(backend, max_line_size=1 << 16, max_field_size=1 << 16, max_headers=1000)
                        if roomy_upstream else FrontRunner(backend))
            await upstream.setup()
            await web.TCPSite(upstream, "127.0.0.1", upstream_port).start()
        port = free_port()
        front = await start(make_app(Rpc(), upstream=f"http://127.0.0.1:{upstream_port}"), "127.0.0.1", port)
        try:
            await scenario(port, seen)
        finally:
            await front.cleanup()
            if upstream is not None:
                await upstream.cleanup()

    asyncio.run(main())


def assert_refusal(head: bytes, body: bytes, status: int, code: str) -> None:
    assert head.startswith(f"HTTP/1.1 {status} ".encode()), head
    lower = head.lower()
    assert b"content-type: application/json" in lower and b"x-content-type-options: nosniff" in lower, head
    assert b"aiohttp" not in lower and b"server: sfera" in lower, head
    error = json.loads(body)["error"]
    assert error["code"] == code and error["message"] and error["details"] == {}, error


@pytest.mark.parametrize("status, code, request_bytes", [
    (414, "request.uri_too_long", b"GET /api/v1/me?" + b"a" * 10_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
    (414, "request.uri_too_long", b"GET /api/v1/me?" + b"a" * REQUEST_LINE_MAX + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
    (431, "request.headers_too_large", b"GET /api/v1/me HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 10_000 + b"\r\n\r\n"),
    (431, "request.headers_too_large",
     b"GET /api/v1/me HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: 1\r\n" % n for n in range(HEADERS_MAX + 1))
     + b"\r\n"),
    (400, "request.invalid", b"GET /api/v1/me HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n"),
])
def test_the_fronts_own_refusals_are_gunicorns_in_the_one_error_shape(status, code, request_bytes):
    async def scenario(port, seen):
        head, body = await raw(port, request_bytes)
        assert_refusal(head, body, status, code)
        assert seen == []  # refused at the door: the gateway never saw it

    through_front(scenario)


def test_a_request_line_and_headers_within_gunicorns_limits_pass():
    async def scenario(port, seen):
        query = b"a" * (REQUEST_LINE_MAX - len(b"GET /api/v1/me? HTTP/1.1"))
        head, _ = await raw(port, b"GET /api/v1/me?" + query + b" HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 8000
                            + b"\r\nConnection: close\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 405 "), head
        assert seen == [("GET", "/api/v1/me?" + query.decode())]

    through_front(scenario)


@pytest.mark.parametrize("path", ["/api/v1/parent-invites/U%28%11%F0%91%A0%90%0A%F1%8E%B7%96", "/api/v1/x%0D%0Ay",
                                  "/api/v1/%0A", "/%00"])
def test_a_path_with_encoded_line_breaks_or_control_characters_reaches_the_gateway(path):
    """The fuzzer's find (tests/e2e/test_fuzz.py): the front's catch-all route did not match a path whose decoded
    form holds a line break (a regular expression's '.'), so aiohttp answered its own 404 in text/plain."""
    async def scenario(port, seen):
        head, body = await raw(port, f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        assert head.startswith(b"HTTP/1.1 405 "), head
        assert [m for m, _ in seen] == ["GET"]

    through_front(scenario)


def test_an_unknown_method_reaches_the_gateway_as_gunicorn_passes_it():
    async def scenario(port, seen):
        head, body = await raw(port, b"FOOBAR0 /api/v1/me HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 405 "), head
        assert json.loads(body)["method"] == "FOOBAR0" and seen == [("FOOBAR0", "/api/v1/me")]

    through_front(scenario)


def test_a_gateway_that_does_not_answer_is_a_503_in_the_one_shape():
    async def scenario(port, seen):
        head, body = await raw(port, b"GET /api/v1/me HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert_refusal(head, body, 503, "service.unavailable")

    through_front(scenario, upstream_alive=False)


@pytest.mark.parametrize("trusted, passed_on", [
    ("no", "127.0.0.1"),                    # the front is the edge: a client's own X-Forwarded-For is dropped
    ("yes", "203.0.113.5, 127.0.0.1"),      # behind a proxy it trusts: kept, this hop added (the gateway reads the
])                                          # first, as it does behind any trusted proxy)
def test_who_called_is_said_by_the_front_or_the_proxy_it_trusts(monkeypatch, trusted, passed_on):
    monkeypatch.setenv("SFERA_TRUST_FORWARDED_FOR", trusted)

    async def scenario(port, seen):
        _, body = await raw(port, b"GET /api/v1/me HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.5\r\n"
                                  b"Connection: close\r\n\r\n")
        assert json.loads(body)["forwarded_for"] == passed_on

    through_front(scenario)


def test_the_front_refuses_to_start_in_production_on_repository_defaults(tmp_path):
    env = {**os.environ, "SFERA_ENV": "production", "SFERA_VAR_DIR": str(tmp_path)}
    env.pop("SFERA_JWT_SECRET", None)
    done = subprocess.run([sys.executable, "-m", "gateway.realtime_server", "--port", str(free_port())], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 78 and "SFERA_ENV=production" in done.stderr and "SFERA_JWT_SECRET" in done.stderr



def test_settled_sockets_are_kept_out_of_the_collectors_full_passes_and_thawed_after_churn(monkeypatch):
    """bench.realtime: 8 full collections (2.2 s of CPU, every socket's frames waiting) while 10,000 sockets
    connected, freeing almost nothing; frozen once they settle, 1 of 58 ms. Frozen cyclic garbage is never
    collected: once a quarter of the sockets frozen have closed, the process thaws and collects once."""
    from gateway import realtime_server

    calls = []
    monkeypatch.setattr(realtime_server.gc, "freeze", lambda: calls.append("freeze"))
    monkeypatch.setattr(realtime_server.gc, "unfreeze", lambda: calls.append("unfreeze"))
    monkeypatch.setattr(realtime_server.gc, "collect", lambda *a: calls.append("collect") or 0)

    async def main():
        generations = realtime_server.Generations(asyncio.get_running_loop(), settle=0.05, min_churn=2)
        for _ in range(8):
            generations.connected()
        assert calls == []                                  # not before the sockets settle
        await asyncio.sleep(0.15)
        assert calls == ["freeze"]                          # once for the eight, not per socket
        generations.disconnected()
        assert calls == ["freeze"]                          # one of eight: not yet
        generations.disconnected()
        assert calls == ["freeze", "unfreeze", "collect"]   # a quarter of the eight closed
        await asyncio.sleep(0.15)
        assert calls == ["freeze", "unfreeze", "collect", "freeze"]  # the six still open, frozen again

    asyncio.run(main())


def test_the_servers_own_process_freezes_its_sockets_unless_told_not_to(monkeypatch):
    from gateway import realtime_server

    seen = {}
    monkeypatch.setattr(realtime_server, "make_app", lambda rpc, **options: seen.update(options) or 0)
    monkeypatch.setattr(realtime_server, "serve", lambda *args: asyncio.sleep(0))
    monkeypatch.setattr(realtime_server, "refuse_unsafe_start", lambda process: None)
    monkeypatch.setattr(realtime_server, "configure_logging", lambda process: None)
    monkeypatch.setattr(realtime_server.gc, "callbacks", [])
    monkeypatch.setattr(sys, "argv", ["realtime_server", "--port", "1"])
    realtime_server.main()
    assert seen["freeze_sockets"] is True
    monkeypatch.setenv("SFERA_REALTIME_GC_FREEZE", "no")
    realtime_server.main()
    assert seen["freeze_sockets"] is False


def test_the_fronts_own_process_runs_on_uvloop_unless_told_not_to(monkeypatch):
    import uvloop

    from gateway import realtime_server

    loops = []

    async def serve(*args):
        loops.append(type(asyncio.get_running_loop()))

    monkeypatch.setattr(realtime_server, "make_app", lambda rpc, **options: 0)
    monkeypatch.setattr(realtime_server, "serve", serve)
    monkeypatch.setattr(realtime_server, "refuse_unsafe_start", lambda process: None)
    monkeypatch.setattr(realtime_server, "configure_logging", lambda process: None)
    monkeypatch.setattr(realtime_server.gc, "callbacks", [])
    monkeypatch.setattr(sys, "argv", ["realtime_server", "--port", "1"])
    realtime_server.main()
    monkeypatch.setenv("SFERA_FRONT_LOOP", "asyncio")
    realtime_server.main()
    assert loops[0] is uvloop.Loop and not issubclass(loops[1], uvloop.Loop)


def test_what_no_route_of_the_server_takes_is_refused_in_the_one_error_shape():
    """aiohttp's routing refusals (the server alone, no gateway behind it: a path it has no route for, a method
    its socket's route does not take) in the API's error shape, not text/plain naming aiohttp."""
    async def main():
        port = free_port()
        server = await start(make_app(Rpc()), "127.0.0.1", port)
        try:
            for request, status, code in (
                    (b"GET /api/v1/nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 404, "route.not_found"),
                    (b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", 405,
                     "route.method_not_allowed")):
                head, body = await raw(port, request)
                assert_refusal(head, body, status, code)
        finally:
            await server.cleanup()

    asyncio.run(main())


def test_the_front_lets_an_idle_gateway_connection_go_before_gunicorn_closes_it():
    """CI: an upload's answer lost ("Server disconnected", 502): the front kept idle connections to gunicorn for
    aiohttp's default 15 s while gunicorn closes them after its keep-alive (2 s), so a request could go out on a
    connection gunicorn was closing."""
    from gunicorn.config import Config

    from gateway import realtime_server

    gunicorn_keepalive = Config().keepalive
    conf = {}
    exec(compile(open(realtime_server.__file__.replace("realtime_server.py", "gunicorn_conf.py")).read(),
                 "gunicorn_conf", "exec"), conf)
    gunicorn_keepalive = conf.get("keepalive", gunicorn_keepalive)

    async def main():
        app = realtime_server.make_app(Rpc(), upstream="http://127.0.0.1:1")
        runner = web.AppRunner(app)
        await runner.setup()
        try:
            assert 0 < app[realtime_server.CLIENT].keepalive < gunicorn_keepalive  # test_upstream.py: it does
        finally:
            await runner.cleanup()

    asyncio.run(main())


async def answer_on(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """One answer with a Content-Length read off a keep-alive connection: its head and body."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    length = next(int(line.split(b":")[1]) for line in head.lower().split(b"\r\n")
                  if line.startswith(b"content-length"))
    return head, await asyncio.wait_for(reader.readexactly(length), 10)


def test_any_method_token_is_passed_on_whichever_request_of_a_connection_it_is_and_however_it_arrives():
    """The front reads requests with aiohttp's C parser (llhttp) and gives what it refuses (a method token it does
    not list) to the Python parser from the request's first byte: after a request without a body, after one with a
    body on the same connection, and when the head arrives in pieces (its method token split: 'PU' is the start of
    llhttp's PURGE, 'PURGE2' is not a method it knows)."""
    connections = [
        [b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n", b"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
         b"PURGE2 /c HTTP/1.1\r\nHost: x\r\n\r\n", b"GET /d HTTP/1.1\r\nHost: x\r\n\r\n"],
        [b"GET /e HTTP/1.1\r\nHost: x\r\n\r\n", b"PURGE2 /f HTTP/1.1\r\nHost: x\r\n\r\n"],
        [b"FOOBAR1 /g HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc", b"GET /h HTTP/1.1\r\nHost: x\r\n\r\n"],
        [b"PUT /i HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc", b"FOOBAR2 /j HTTP/1.1\r\nHost: x\r\n\r\n"],
    ]

    async def scenario(port, seen):
        for requests in connections:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            for request in requests:
                for piece in (request[:2], request[2:9], request[9:]):  # three reads at the front (paused between)
                    writer.write(piece)
                    await writer.drain()
                    await asyncio.sleep(0.03)
                head, body = await answer_on(reader)
                assert head.startswith(b"HTTP/1.1 405 "), (request, head)
            writer.close()
        assert seen == [("GET", "/a"), ("POST", "/b"), ("PURGE2", "/c"), ("GET", "/d"), ("GET", "/e"),
                        ("PURGE2", "/f"), ("FOOBAR1", "/g"), ("GET", "/h"), ("PUT", "/i"), ("FOOBAR2", "/j")]

    through_front(scenario)


@pytest.mark.parametrize("over, status", [(0, 405), (1, 414)])
def test_the_request_line_limit_is_the_whole_lines_to_the_byte(over, status):
    """The C parser measures the target, gunicorn (and the front) the request line: method, target and version."""
    async def scenario(port, seen):
        query = b"a" * (REQUEST_LINE_MAX - len(b"PATCH /api/v1/me? HTTP/1.1") + over)
        head, _ = await raw(port, b"PATCH /api/v1/me?" + query + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 %d " % status), head
        assert len(seen) == (status == 405)

    through_front(scenario, roomy_upstream=True)


@pytest.mark.parametrize("headers, status", [(HEADERS_MAX - 2, 405), (HEADERS_MAX - 1, 431)])
def test_the_header_count_limit_is_the_fronts_own_to_the_header(headers, status):
    """The front's limit as its Python parser counts (the request line and the head's end among HEADERS_MAX lines),
    whichever of its parsers reads the request."""
    async def scenario(port, seen):
        lines = b"Host: x\r\nConnection: close\r\n" + b"".join(b"X-%d: 1\r\n" % n for n in range(headers - 2))
        head, _ = await raw(port, b"GET /api/v1/me HTTP/1.1\r\n" + lines + b"\r\n")
        assert head.startswith(b"HTTP/1.1 %d " % status), head
        assert len(seen) == (status == 405)

    through_front(scenario, roomy_upstream=True)


@pytest.mark.parametrize("spaces, status", [(0, 405), (1, 431)])
def test_a_header_lines_limit_counts_its_colon_and_spaces(spaces, status):
    """The C parser measures a header's name and value, the front (as gunicorn) its line."""
    async def scenario(port, seen):
        value = b"v" * (HEADER_FIELD_MAX - len(b"X-Big: "))  # a line of HEADER_FIELD_MAX, and the spaces
        head, _ = await raw(port, b"GET /api/v1/me HTTP/1.1\r\nHost: x\r\nX-Big: " + b" " * spaces + value
                            + b"\r\nConnection: close\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 %d " % status), head
        assert len(seen) == (status == 405)

    through_front(scenario, roomy_upstream=True)


def test_a_post_lost_on_a_connection_the_gateway_closed_idle_is_answered_not_a_502():
    """gunicorn closes a kept-alive connection as a request arrives on it (it never read it): the front sends the
    request again on a new connection when no byte of an answer came and its body was whole in hand (aiohttp's
    client sent again only GET-like requests: a chat post was a 502 service.failed)."""
    async def main():
        seen = []

        async def gateway(reader, writer):
            for n in (1, 2):
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.lower().split(b"\r\n")
                               if line.startswith(b"content-length:")), 0)
                body = await reader.readexactly(length)
                seen.append((head.split(b" ")[0], body))
                if n == 2:  # as gunicorn's keep-alive running out: closed, the request unread
                    writer.transport.abort()
                    return
                writer.write(b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
                await writer.drain()

        upstream_port, port = free_port(), free_port()
        server = await asyncio.start_server(gateway, "127.0.0.1", upstream_port)
        front = await start(make_app(Rpc(), upstream=f"http://127.0.0.1:{upstream_port}"), "127.0.0.1", port)
        try:
            post = (b'POST /api/v1/chats/x/messages HTTP/1.1\r\nHost: x\r\nConnection: close\r\n'
                    b'Content-Length: 7\r\n\r\n{"a":1}')
            for _ in range(2):
                head, body = await raw(port, post)
                assert head.startswith(b"HTTP/1.1 201 "), head
        finally:
            await front.cleanup()
            server.close()
        assert seen == [(b"POST", b'{"a":1}')] * 3  # the second sent twice

    asyncio.run(main())


def test_a_gateway_that_cuts_the_connection_unanswered_is_a_502_in_the_one_shape():
    async def main():
        async def gateway(reader, writer):  # reads the request, closes without a word (each new connection too)
            await reader.readuntil(b"\r\n\r\n")
            writer.transport.abort()

        upstream_port, port = free_port(), free_port()
        server = await asyncio.start_server(gateway, "127.0.0.1", upstream_port)
        front = await start(make_app(Rpc(), upstream=f"http://127.0.0.1:{upstream_port}"), "127.0.0.1", port)
        try:
            head, body = await raw(port, b"GET /api/v1/me HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert_refusal(head, body, 502, "service.failed")
        finally:
            await front.cleanup()
            server.close()

    asyncio.run(main())
