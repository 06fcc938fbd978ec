"""A private platform for a benchmark: its own RabbitMQ and durable PostgreSQL
(fsync on) in a temporary folder, stopped and removed afterwards; an SMS operator
that keeps the codes; concurrent clients."""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tools.devstack.infra import free_port, free_port_block
from tools.devstack.stack import Stack, StackConfig


class SmsCapture:
    """An SMS operator that keeps each phone's last code."""

    def __init__(self):
        self.codes: dict[str, str] = {}
        self.arrived = threading.Condition()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with outer.arrived:
                    outer.codes[body["to"]] = re.search(r"\d{6}", body["text"]).group(0)
                    outer.arrived.notify_all()
                self.send_response(202)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def code_for(self, phone: str, timeout: float = 10) -> str:
        with self.arrived:
            if not self.arrived.wait_for(lambda: phone in self.codes, timeout):
                raise TimeoutError(f"no SMS to {phone}")
            return self.codes.pop(phone)


def burst(fn, items: list, clients: int) -> tuple[float, list[float]]:
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = list(pool.map(fn, items))
    return time.perf_counter() - started, latencies


@contextmanager
def environment(**env: str) -> Iterator[None]:
    """This process's environment with ``env`` set meanwhile (what an application made in it reads: a bench's
    baseline, ``SFERA_STORE_...=off``), as it was after."""
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                del os.environ[name]
            else:
                os.environ[name] = value


@contextmanager
def running_platform(sms: SmsCapture, **extra_env: str) -> Iterator[tuple[Stack, str]]:
    """Every service, relay and the gateway on a private stack, SMS going to ``sms``;
    yields the stack and the API's base URL."""
    with private_stack(SFERA_SMS_ADAPTER="http", SFERA_SMS_GATEWAY_URL=sms.url,
                       SFERA_CODES_PER_HOUR_PER_CLIENT="1000000", **extra_env) as stack:
        stack.prepare()
        stack.start_all()
        yield stack, f"{stack.gateway_url}/api/v1"


@contextmanager
def private_stack(**extra_env: str) -> Iterator[Stack]:
    with tempfile.TemporaryDirectory(prefix="sfera-bench-") as tmp:
        config = StackConfig(var_dir=Path(tmp), persistence="postgres", amqp_port=free_port(), pg_port=free_port(),
                             gateway_port=free_port(), metrics_base_port=free_port_block(40), durable_pg=True,
                             sfu_port=free_port(),  # not 8300: a bench beside another stack's SFU starts too
                             extra_env={"SFERA_LOG_LEVEL": "WARNING", **extra_env})
        stack = Stack(config)
        print(f"starting private RabbitMQ and PostgreSQL (fsync on) in {tmp} ...", flush=True)
        try:
            stack.start_infra()
            yield stack
        finally:
            stack.stop()
