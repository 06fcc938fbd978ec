"""Every member's WebSocket held by a process of its own (issue #17: the bench's receivers must not be what is
measured). bench.messaging's posters are 50 threads of ``requests`` in the bench's process; reading 200 sockets in a
thread of that same process (``bench.messaging.Sockets``) put every frame's arrival time behind the posters' hold
of the interpreter lock (up to its 5 ms switch interval a wait), and each post's send behind the readers'. Here one
asyncio loop in a child process reads them all and stamps each frame as it is read; the loop's own lateness is
measured too (a 10 ms ticker), so a figure says when the reader, not the platform, was late.

The parent (``Listeners``) has the interface of ``Sockets``: ``arrivals`` (a MessagePosted's text -> the times it
arrived, one a socket), ``frames`` (frames by type), ``connected``; ``refresh()`` brings them from the child,
``close()`` brings them a last time and ends it. The child speaks JSON lines: it reads the tokens, answers
``{"connected": n}``, then answers each ``snapshot`` or ``close`` on its stdin with what it has.

    python -m bench.listeners <ws url ending in access_token=>   (tokens as one JSON list on stdin)
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

from tools.devstack.stack import PYTHON

TICK = 0.01


class Listeners:
    def __init__(self, ws_url: str, tokens: list[str]):
        self.arrivals: dict[str, list[float]] = {}
        self.frames: dict[str, int] = {}
        self.lag_ms: list[float] = []  # the child's loop: each 10 ms tick's lateness (the reader's own delay)
        self.cpu = 0.0  # the child's CPU seconds so far
        self.child = subprocess.Popen([PYTHON, "-m", "bench.listeners", ws_url], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, text=True)
        self.child.stdin.write(json.dumps(tokens) + "\n")
        self.child.stdin.flush()
        self.connected = self._answer()["connected"]

    def _answer(self) -> dict:
        line = self.child.stdout.readline()
        if not line:
            raise RuntimeError(f"bench.listeners ended (exit {self.child.wait(10)})")
        return json.loads(line)

    def _ask(self, command: str) -> None:
        self.child.stdin.write(command + "\n")
        self.child.stdin.flush()
        found = self._answer()
        self.arrivals, self.frames, self.lag_ms, self.cpu = (found["arrivals"], found["frames"], found["lag_ms"],
                                                             found["cpu"])

    def refresh(self) -> None:
        self._ask("snapshot")

    def close(self) -> None:
        if self.child.poll() is None:
            self._ask("close")
            self.child.wait(30)


async def _listen(ws_url: str, tokens: list[str]) -> None:
    import aiohttp

    arrivals: dict[str, list[float]] = {}
    frames: dict[str, int] = {}
    lag_ms: list[float] = []
    loop = asyncio.get_running_loop()

    async def read(ws) -> None:
        async for frame in ws:
            at = time.time()
            message = json.loads(frame.data)
            frames[message["type"]] = frames.get(message["type"], 0) + 1
            if message["type"] == "MessagePosted":
                arrivals.setdefault(message["data"]["text"], []).append(at)

    async def tick() -> None:
        while True:
            due = loop.time() + TICK
            await asyncio.sleep(TICK)
            lag_ms.append((loop.time() - due) * 1000)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        gate = asyncio.Semaphore(20)

        async def one(token: str):
            async with gate:
                ws = await session.ws_connect(ws_url + token, max_msg_size=0)
                greeting = await ws.receive(timeout=60)
                if greeting.type is not aiohttp.WSMsgType.TEXT or json.loads(greeting.data).get("type") != "ready":
                    raise RuntimeError(f"no ready from the gateway: {greeting}")
                return ws

        sockets = await asyncio.gather(*(one(t) for t in tokens))
        tasks = [asyncio.create_task(read(ws)) for ws in sockets] + [asyncio.create_task(tick())]
        print(json.dumps({"connected": len(sockets)}), flush=True)
        commands = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(commands), sys.stdin)
        while True:
            command = (await commands.readline()).decode().strip()
            print(json.dumps({"arrivals": arrivals, "frames": frames, "lag_ms": lag_ms, "cpu": time.process_time()}),
                  flush=True)
            if command in ("close", ""):
                break
        for task in tasks:
            task.cancel()
        for ws in sockets:
            await ws.close()


def main() -> None:
    tokens = json.loads(sys.stdin.readline())
    asyncio.run(_listen(sys.argv[1], tokens))


if __name__ == "__main__":
    main()
