"""A round-robin TCP balancer on loopback: the one public port in front of a stack's gateway replicas, as an
ingress is in production. Each new connection goes to the next gateway in turn; a gateway that refuses the
connection (down, restarting) is skipped for the next. Bytes are passed through untouched (HTTP, WebSockets).

    python -m tools.devstack.balancer --port 8080 --upstream 127.0.0.1:8081 --upstream 127.0.0.1:8082
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import signal
import sys

CHUNK = 65536


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copies until end of stream, then half-closes the other side (its answer may still come back)."""
    try:
        while chunk := await reader.read(CHUNK):
            writer.write(chunk)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        writer.close()


class Balancer:
    def __init__(self, upstreams: list[tuple[str, int]]):
        if not upstreams:
            raise ValueError("at least one upstream")
        self.upstreams = upstreams
        self.turn = itertools.cycle(range(len(upstreams)))

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """The next upstream that accepts a connection, trying each once."""
        for _ in self.upstreams:
            host, port = self.upstreams[next(self.turn)]
            try:
                return await asyncio.wait_for(asyncio.open_connection(host, port), timeout=2)
            except (OSError, TimeoutError):
                continue
        return None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream = await self.connect()
        if upstream is None:  # every gateway is down: the client sees the connection closed, as with none at all
            writer.close()
            return
        up_reader, up_writer = upstream
        try:
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        finally:
            for w in (writer, up_writer):
                w.close()


async def serve(port: int, upstreams: list[tuple[str, int]]) -> None:
    balancer = Balancer(upstreams)
    server = await asyncio.start_server(balancer.handle, "127.0.0.1", port, backlog=1024, reuse_address=True)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    async with server:
        await stopping.wait()


def upstream(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    return host or "127.0.0.1", int(port)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.devstack.balancer", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", type=upstream, action="append", required=True, help="host:port, repeated")
    args = parser.parse_args(argv)
    asyncio.run(serve(args.port, args.upstream))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
