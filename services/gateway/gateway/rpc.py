"""A pool of started nameko standalone RPC proxies, one per concurrent request.

A proxy is not thread-safe, so each request borrows one. The request id rides
in the proxy's context data (the dict is the proxy's own, and the borrower
holds it alone), so services log it with every line. Requests go out transient and
unconfirmed (``shared.rpc``): a lost one is an ``RpcTimeout`` (503), never a fact lost.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from shared.errors import DomainError
from shared.observability.logging import get_logger
from shared.rpc import TransientClusterRpcProxy

log = get_logger("gateway.rpc")


class _Entry:
    def __init__(self, config: dict, timeout: float):
        self.context: dict[str, Any] = {}
        self.proxy = TransientClusterRpcProxy(config, context_data=self.context, timeout=timeout)
        self.cluster = self.proxy.start()

    def close(self) -> None:
        try:
            self.proxy.stop()
        except Exception:  # a broken connection cannot be closed politely
            log.debug("closing a broken rpc proxy failed", exc_info=True)


class RpcPool:
    def __init__(self, amqp_uri: str, size: int = 8, timeout: float = 10.0):
        self.config = {"AMQP_URI": amqp_uri}
        self.timeout = timeout
        self.idle: queue.LifoQueue[_Entry] = queue.LifoQueue()
        self.slots = threading.BoundedSemaphore(size)

    @contextmanager
    def borrow(self) -> Iterator[_Entry]:
        if not self.slots.acquire(timeout=self.timeout):
            raise TimeoutError("no free RPC proxy")
        entry = None
        try:
            try:
                entry = self.idle.get_nowait()
            except queue.Empty:
                entry = _Entry(self.config, self.timeout)
            yield entry
        except DomainError:
            raise  # a typed refusal from a service: the connection is fine
        except BaseException:
            # Anything may have gone wrong with its connection: do not reuse it.
            if entry is not None:
                entry.close()
                entry = None
            raise
        finally:
            if entry is not None:
                entry.context.clear()
                self.idle.put(entry)
            self.slots.release()

    def call(self, service: str, method: str, *, request_id: str | None = None, **kwargs: Any) -> Any:
        with self.borrow() as entry:
            if request_id:
                entry.context["request_id"] = request_id
            return getattr(getattr(entry.cluster, service), method)(**kwargs)

    def close(self) -> None:
        while True:
            try:
                self.idle.get_nowait().close()
            except queue.Empty:
                return
