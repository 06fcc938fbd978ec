"""A private platform for a benchmark: its own RabbitMQ and durable PostgreSQL
(fsync on) in a temporary folder, stopped and removed afterwards."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tools.devstack.infra import free_port, free_port_block
from tools.devstack.stack import Stack, StackConfig


@contextmanager
def private_stack(**extra_env: str) -> Iterator[Stack]:
    with tempfile.TemporaryDirectory(prefix="sfera-bench-") as tmp:
        config = StackConfig(var_dir=Path(tmp), persistence="postgres", amqp_port=free_port(), pg_port=free_port(),
                             gateway_port=free_port(), metrics_base_port=free_port_block(40), durable_pg=True,
                             extra_env={"SFERA_LOG_LEVEL": "WARNING", **extra_env})
        stack = Stack(config)
        print(f"starting private RabbitMQ and PostgreSQL (fsync on) in {tmp} ...", flush=True)
        try:
            stack.start_infra()
            yield stack
        finally:
            stack.stop()
