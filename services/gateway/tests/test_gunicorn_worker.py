"""The gateway's gunicorn worker (gateway.gunicorn_worker): the thread that answered a keep-alive request answers the
connection's next one itself when it comes within the linger, and hands the connection back to gthread's poller
otherwise (issue #17: three thread wake-ups a request behind the asyncio front)."""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest
from gunicorn import glogging
from gunicorn.config import Config
from gunicorn.workers.gthread import TConn

from gateway.gunicorn_worker import GatewayThreadWorker

pytestmark = pytest.mark.unit


def wsgi(environ, start_response):
    body = environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def worker(linger: float, threads: int = 4) -> GatewayThreadWorker:
    cfg = Config()
    cfg.set("threads", threads)
    made = GatewayThreadWorker(1, os.getpid(), [], None, 30, cfg, glogging.Logger(cfg))
    made.wsgi, made.linger = wsgi, linger
    return made


def request(text: str, close: bool = False) -> bytes:
    return (f"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: {len(text)}\r\n"
            + ("Connection: close\r\n" if close else "") + f"\r\n{text}").encode()


@pytest.fixture
def connection():
    """(the worker's TConn, the client's socket) over loopback TCP."""
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname(), timeout=10)  # a test that fails does not hang
    server, address = listener.accept()
    listener.close()
    yield TConn(Config(), server, address, server.getsockname()), client
    client.close()
    server.close()


def handled(made: GatewayThreadWorker, conn: TConn) -> tuple[object, float]:
    started = time.monotonic()
    return made.handle(conn), time.monotonic() - started


def answers(client: socket.socket, count: int) -> bytes:
    data = b""
    while data.count(b"HTTP/1.1 200") < count or not data.endswith((b"one", b"two", b"three")):
        data += client.recv(4096)
    return data


def test_the_next_request_within_the_linger_is_answered_by_the_same_thread(connection):
    conn, client = connection
    made = worker(linger=5.0)

    def client_side():
        client.sendall(request("one"))
        answers(client, 1)
        time.sleep(0.05)
        client.sendall(request("two"))
        answers(client, 1)
        client.sendall(request("three", close=True))

    sender = threading.Thread(target=client_side)
    sender.start()
    keepalive, _ = handled(made, conn)
    sender.join()
    assert made.nr == 3  # all three in this one call: none went back to the poller
    assert keepalive is False  # the last said Connection: close


def test_a_connection_quiet_for_the_linger_goes_back_to_the_poller_kept_alive(connection):
    conn, client = connection
    made = worker(linger=0.2)
    client.sendall(request("one"))
    keepalive, took = handled(made, conn)
    assert keepalive is True and made.nr == 1 and 0.2 <= took < 2
    assert answers(client, 1).endswith(b"one")


def test_no_linger_when_the_worker_holds_more_connections_than_threads_or_is_stopping(connection):
    conn, client = connection
    made = worker(linger=5.0, threads=2)
    made.nr_conns = 3  # a thread waiting on one could keep another connection waiting for a thread
    client.sendall(request("one"))
    keepalive, took = handled(made, conn)
    assert keepalive is True and made.nr == 1 and took < 2
    made.nr_conns, made.alive = 1, False
    client.sendall(request("two"))
    assert made.handle(conn) is False and made.nr == 2  # a stopping worker closes (gthread's own rule)


def test_zero_is_gthreads_way(connection):
    conn, client = connection
    made = worker(linger=0)
    client.sendall(request("one") + request("two"))  # both at once: the second is buffered already
    keepalive, _ = handled(made, conn)
    assert keepalive is True and made.nr == 2  # what was read ahead is answered, as gthread enqueues it at once
