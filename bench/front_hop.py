"""The asyncio front's proxy hop alone (issue #17, live chat delivery): its CPU a request passed to a stub of the
gunicorn gateway (an asyncio server answering every request with a fixed 201 and JSON, as a chat post's answer)
and its answer passed back, no platform, no sockets to fan out to. A quick A/B of the hop's code:
``bench.gateway_post`` measures the same hop on the whole platform, slower and noisier.

This tree's front and ``--base``'s (its services/gateway from ``git archive``) run side by side before one stub;
they take turns (each first in turn) so both see the same load of the machine. Keep-alive POSTs of a chat
message's size with a browser's headers: ``--connections`` at once as fast as answered, then one at a time
paced at ``--paced-rate`` a second (each request alone on the loop, as at 40 posts/s). Each front runs on the loop
its process runs on (``realtime_server.loop_factory``, uvloop, where its tree has one). Each front's CPU is read
from the kernel (every thread's schedstat) before and after each turn.

    python -m bench.front_hop [--base REV] [--requests 6000] [--rounds 5] [--connections 8] [--paced-rate 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import report
from bench.gateway_post import cpu_seconds
from tools.devstack.infra import free_port

BASE = "8054b45"  # the front before its C parser and its own upstream client
REPO = Path(__file__).resolve().parent.parent

BODY = b'{"id": "3f1c0e0e-0000-4000-8000-000000000000", "text": "hello", "created_at": "2026-11-30T12:00:00Z"}'
ANSWER = (b"HTTP/1.1 201 CREATED\r\nServer: sfera\r\nDate: Mon, 30 Nov 2026 12:00:00 GMT\r\n"
          b"Content-Type: application/json\r\nContent-Length: %d\r\nX-Request-Id: 0123456789abcdef\r\n"
          b"X-Content-Type-Options: nosniff\r\nX-Frame-Options: DENY\r\nReferrer-Policy: no-referrer\r\n"
          b"Content-Security-Policy: default-src 'self'; frame-ancestors 'none'\r\n\r\n" % len(BODY)) + BODY
POST = b'{"text": "a chat message of a usual length, with a few words in it"}'


def request(port: int) -> bytes:
    return (b"POST /api/v1/chats/3f1c0e0e-0000-4000-8000-000000000000/messages HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
            b"User-Agent: Mozilla/5.0 (X11; Linux x86_64) Chrome/130.0\r\nAccept: */*\r\n"
            b"Accept-Encoding: gzip, deflate, br\r\nAccept-Language: ru-RU,ru;q=0.9\r\nConnection: keep-alive\r\n"
            b"Authorization: Bearer %b\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
            % (port, b"e" * 180, len(POST))) + POST


class Stub(asyncio.Protocol):
    """The gateway's stand-in: each request (its head and its Content-Length body) answered ANSWER."""

    def connection_made(self, transport) -> None:
        self.transport, self.buffer, self.body = transport, b"", None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            if self.body is None:
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                head, self.buffer = self.buffer[:end].lower(), self.buffer[end + 4:]
                at = head.find(b"content-length:")
                self.body = int(head[at + 15:].split(b"\r\n")[0]) if at >= 0 else 0
            if len(self.buffer) < self.body:
                return
            self.buffer, self.body = self.buffer[self.body:], None
            self.transport.write(ANSWER)


async def serve_stub(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(Stub, "127.0.0.1", port)
    print("ready", flush=True)
    await server.serve_forever()


async def serve_front(port: int, upstream: str) -> None:
    from gateway import realtime_server

    class NoRpc:
        def call(self, *args, **kwargs):  # pragma: no cover - no socket opens
            raise AssertionError(args)

    await realtime_server.start(realtime_server.make_app(NoRpc(), upstream=upstream), "127.0.0.1", port)
    print("ready", flush=True)
    await asyncio.Event().wait()


async def posts(port: int, count: int, pause: float) -> None:
    """``count`` POSTs on one keep-alive connection, each after its answer (and ``pause`` seconds)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    data = request(port)
    for _ in range(count):
        if pause:
            await asyncio.sleep(pause)
        writer.write(data)
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 201"):
            raise RuntimeError(head)
        at = head.lower().find(b"content-length:")
        await reader.readexactly(int(head[at + 15:].split(b"\r\n")[0]))
    writer.close()


def turn(pid: int, port: int, count: int, connections: int, pause: float) -> float:
    """The front's CPU a request (microseconds) over ``count`` requests."""
    before = cpu_seconds(pid)
    asyncio.run(_together(port, count, connections, pause))
    return (cpu_seconds(pid) - before) / count * 1e6


async def _together(port: int, count: int, connections: int, pause: float) -> None:
    await asyncio.gather(*(posts(port, count // connections, pause) for _ in range(connections)))


def spawn(args: list[str], pythonpath: str) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-m", "bench.front_hop", *args], stdout=subprocess.PIPE, cwd=REPO,
                               env={**os.environ, "PYTHONPATH": pythonpath})
    if process.stdout.readline().strip() != b"ready":
        raise RuntimeError(f"{args} did not start")
    return process


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default=BASE, help="the revision whose front is the baseline")
    parser.add_argument("--requests", type=int, default=6000, help="requests a turn, connections at once")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--paced-rate", type=float, default=200.0, help="requests a second, one at a time")
    parser.add_argument("--serve-stub", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--serve-front", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_stub:
        asyncio.run(serve_stub(args.serve_stub))
        return
    if args.serve_front:
        from gateway import realtime_server

        # the loop the front's own process runs on (uvloop), where the front's tree chooses one
        factory = realtime_server.loop_factory() if hasattr(realtime_server, "loop_factory") else None
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(serve_front(int(args.serve_front[0]), args.serve_front[1]))
        return
    tree_path = os.pathsep.join([str(REPO / "services" / "gateway"), str(REPO)])
    processes = []
    with tempfile.TemporaryDirectory(prefix="sfera-bench-front-") as base_dir:
        archive = subprocess.run(["git", "archive", args.base, "services/gateway"], cwd=REPO, check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", base_dir], input=archive, check=True)
        try:
            stub_port = free_port()
            processes.append(spawn(["--serve-stub", str(stub_port)], tree_path))
            fronts = {}
            for name, path in (("base", os.pathsep.join([str(Path(base_dir) / "services" / "gateway"), str(REPO)])),
                               ("tree", tree_path)):
                port = free_port()
                processes.append(spawn(["--serve-front", str(port), f"http://127.0.0.1:{stub_port}"], path))
                fronts[name] = (processes[-1].pid, port)
            for pid, port in fronts.values():  # warm
                turn(pid, port, 1000, args.connections, 0)
            found = {(name, mode): [] for name in fronts for mode in ("busy", "paced")}
            paced = max(100, args.requests // 20)
            print(f"{args.rounds} rounds: {args.requests} requests on {args.connections} connections at once, then "
                  f"{paced} one at a time at {args.paced_rate:.0f}/s, the fronts in turns (other processes' CPU "
                  "counts in neither) ...", flush=True)
            load = report.Load()
            for round_ in range(args.rounds):
                for name in (list(fronts) if round_ % 2 == 0 else list(fronts)[::-1]):
                    pid, port = fronts[name]
                    started = time.perf_counter()
                    found[name, "busy"].append(turn(pid, port, args.requests, args.connections, 0))
                    rate = args.requests / (time.perf_counter() - started)
                    found[name, "paced"].append(turn(pid, port, paced, 1, 1 / args.paced_rate))
                    print(f"  round {round_ + 1}, {name}: {found[name, 'busy'][-1]:.0f} us CPU a request at once "
                          f"({rate:.0f}/s), {found[name, 'paced'][-1]:.0f} us paced", flush=True)
        finally:
            for process in processes:
                process.terminate()
                process.wait()
    median = {key: statistics.median(values) for key, values in found.items()}
    goal = "less CPU a post: 200 msg/s on 2 cores"
    for mode, words in (("busy", f"{args.connections} connections at once"),
                        ("paced", f"one at a time, {args.paced_rate:.0f}/s")):
        tree, base = median["tree", mode], median["base", mode]
        print(f"{words}: this tree {tree:.0f} us CPU a request, {args.base} {base:.0f} us ({tree / base:.2f}x)")
        report.row("front_hop", f"asyncio front alone before a stub gateway: CPU a proxied chat POST, keep-alive, "
                   f"{words} (median of {args.rounds} rounds in turns; {load.words()})",
                   f"{tree:.0f} us (this tree)", f"{base:.0f} us ({args.base})", tree / base, goal)


if __name__ == "__main__":
    main()
    if "--serve-stub" not in sys.argv and "--serve-front" not in sys.argv:
        print(report.table(report.rows("front_hop")), flush=True)
