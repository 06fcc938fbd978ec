"""Helpers of the cross-process tests: waiting, reading stores and metrics."""

from __future__ import annotations

import re
import time
import urllib.request
from collections.abc import Callable
from typing import TypeVar

import simple_websocket

T = TypeVar("T")


def eventually(probe: Callable[[], T], timeout: float = 30, interval: float = 0.1, what: str = "condition") -> T:
    """Poll ``probe`` until it returns something truthy; fail with its last value."""
    deadline = time.monotonic() + timeout
    last: T = None  # type: ignore[assignment]
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")


def metric(url: str, name: str, **labels: str) -> float:
    """The value of one sample on a /metrics page (0 when absent)."""
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0])) if "{" in line else {}
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


class Mailbox:
    """An aiosmtpd handler that keeps every message a real SMTP server receives."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope)
        return "250 OK"


class WebSocketClient(simple_websocket.Client):
    """simple_websocket's client, mended: when the server's first frame arrives in
    the same read as the handshake's answer, the stock client leaves it queued in
    wsproto until more bytes come (a greeting then seems lost). The frames already
    read are handled at once. A server that answers and closes at once (a refusal:
    an error message, then the close frame, all in that one read) still counts as
    connected here, so the refusal can be read; the reader thread then sees the end."""

    def handshake(self) -> None:
        super().handshake()
        self._handle_events()


def publish_event(amqp_uri: str, cloud_event) -> None:
    """``cloud_event`` (``shared.contracts.make_event``'s) published to the real broker where its contract routes it,
    as a service's relay would: for tests of what consumes it."""
    import json

    import pika

    from shared.contracts import get_contract

    contract = get_contract(cloud_event.type)
    connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
    try:
        connection.channel().basic_publish(contract.exchange, contract.routing_key,
                                           json.dumps(cloud_event.to_dict(), default=str).encode())
    finally:
        connection.close()
