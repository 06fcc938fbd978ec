"""The gateway's gunicorn worker: gunicorn's ``gthread`` worker whose thread, having answered a keep-alive
request, waits a moment on the same connection for the next one (issue #17, the worker's CPU a chat post).

gthread hands every request on a kept-alive connection through its main thread: the answering thread tells the
main thread (a pipe and a callback), which puts the socket back in its poller; the next request wakes the main
thread, which takes the socket out again and submits it to the thread pool, waking a thread. Behind the asyncio
front (a few connections, each carrying a request every few milliseconds at 200 posts/s) that is three thread
wake-ups, four ``epoll_ctl``s, a pipe write and read and a future a request, none of them the request's work.

Here the thread that answered polls the connection for up to ``SFERA_GATEWAY_LINGER`` seconds and answers the
next request itself. It lingers only while the worker holds no more connections than it has threads (a thread
waiting on one connection then keeps none of the others waiting), while the worker is not stopping, and never on
HTTP/2 or TLS connections; once the moment has passed the connection goes back to the main thread's poller as
before (its keep-alive timeout starting then). ``SFERA_GATEWAY_LINGER=0``: gthread's way (the baseline).
"""

from __future__ import annotations

import select

from gunicorn.workers.gthread import ThreadWorker

from shared.config import env_float


class GatewayThreadWorker(ThreadWorker):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.linger = env_float("SFERA_GATEWAY_LINGER", 0.1)

    def handle(self, conn):
        keepalive = super().handle(conn)
        while keepalive is True and self._next_request_came(conn):
            keepalive = super().handle(conn)
        return keepalive

    def _next_request_came(self, conn) -> bool:
        """Whether the connection's next request is here or came within the linger (this thread answers it)."""
        if conn.is_http2 or self.cfg.is_ssl:
            return False
        if conn.parser.unreader.buf.getvalue():
            return True  # a drained body read into the next request: it is here already
        if self.linger <= 0 or not self.alive or self.nr_conns > self.cfg.threads:
            return False
        poller = select.poll()
        poller.register(conn.sock, select.POLLIN)
        return bool(poller.poll(self.linger * 1000))
