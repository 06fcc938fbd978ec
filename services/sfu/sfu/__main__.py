"""``python -m sfu``: one SFU node (one per core; a room lives on one node).

Environment: ``SFERA_SFU_HOST`` / ``SFERA_SFU_PORT`` (signaling, health and
metrics on one port, default 127.0.0.1:8300), ``SFERA_SFU_NODE`` (its name; stable
across restarts so that it consumes its own command queue again: default the host
name and the port), ``SFERA_SFU_QUEUE_EXPIRES`` (seconds an abandoned node's queue
is kept, default 600),
``SFERA_SFU_PUBLIC_URL`` (its signaling socket as clients reach it, told to calls in every heartbeat:
default ``SFERA_SFU_URL``, else ``ws://<host>:<port>/ws``), ``SFERA_SFU_HEARTBEAT`` (seconds between
heartbeats, default 2), ``SFERA_SFU_TOKEN_SECRET`` (shared with calls), ``SFERA_AMQP_URI``,
``SFERA_SFU_ICE_SERVERS`` (comma-separated STUN/TURN URLs; none by default), ``SFERA_SFU_FAST_PATH`` (``1``, the
default: forward on raw bytes; ``0``: through ``RtpPacket`` objects, see ``sfu.forward``),
``SFERA_SFU_FAST_RECEIVE`` (``1``, the default: a track's packets taken from the ICE socket past aiortc;
``0``: through aiortc's receive path), ``SFERA_SFU_RECEIVE_BATCH`` (with it, datagrams one wake-up of a
publisher's ICE socket reads: default 32, ``1``: one, as asyncio reads), ``SFERA_SFU_SEND_BATCH`` (with it, ``1``,
the default: a wake-up's packets go to each subscriber in one ``sendmmsg``; ``0``: one ``sendto`` a packet).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys

from sfu.aiortc_adapter import AiortcMismatch, check_aiortc
from sfu.bus import CommandConsumer, FactPublisher
from sfu.server import Node, serve
from shared.blobs import blob_store
from shared.config import settings
from shared.observability.gc import export_gc_metrics
from shared.observability.logging import configure_logging
from shared.production import refuse_unsafe_start
from shared.shutdown import exit_within


def node_name(port: int) -> str:
    """Stable: a restarted node takes up its own queue again (a random name left one behind per start)."""
    return os.environ.get("SFERA_SFU_NODE") or f"{socket.gethostname()}-{port}"


def public_url(host: str, port: int) -> str:
    """The node's signaling socket as clients reach it (one node: the platform's ``SFERA_SFU_URL``)."""
    return (os.environ.get("SFERA_SFU_PUBLIC_URL") or os.environ.get("SFERA_SFU_URL")
            or f"ws://{host}:{port}/ws")


def main() -> int:
    refuse_unsafe_start("sfu")
    try:
        check_aiortc()
    except AiortcMismatch as exc:
        print(f"sfu: {exc}", file=sys.stderr)
        return 1
    config = settings()
    configure_logging("sfu", config.log_level)
    export_gc_metrics("sfu")
    host = os.environ.get("SFERA_SFU_HOST", "127.0.0.1")
    port = int(os.environ.get("SFERA_SFU_PORT", "8300"))
    name = node_name(port)

    async def run() -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        def stop() -> None:
            exit_within()  # closing peers and flushing facts to a gone broker must not hold the exit
            task.cancel()

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop)
        node = Node(name, FactPublisher(config.amqp_uri, name), blob_store(), url=public_url(host, port),
                    heartbeat=float(os.environ.get("SFERA_SFU_HEARTBEAT") or 2))
        commands = CommandConsumer(config.amqp_uri, name, node.apply,
                                   expires=float(os.environ.get("SFERA_SFU_QUEUE_EXPIRES") or 600))
        try:
            await serve(host, port, node, commands)
        except asyncio.CancelledError:
            pass
        finally:
            if node.facts is not None:
                await node.facts.flush()
                await node.facts.close()
            await commands.close()

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
