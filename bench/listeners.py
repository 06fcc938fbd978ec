"""Every member's WebSocket held by a process of its own (issue #17: the bench's receivers must not be what is
measured). bench.messaging's posters are 50 threads of ``requests`` in the bench's process; reading 200 sockets in a
thread of that same process (``bench.messaging.Sockets``) put every frame's arrival time behind the posters' hold
of the interpreter lock (up to its 5 ms switch interval a wait), and each post's send behind the readers'. Here one
asyncio loop in a child process reads them all and stamps each frame as it is read; the loop's own lateness is
measured too (a 10 ms ticker), so a figure says when the reader, not the platform, was late. Frames are parsed
from the raw stream (``_Socket``), a fraction of a general client's work a frame.

The parent (``Listeners``) has the interface of ``Sockets``: ``arrivals`` (a MessagePosted's text -> the times it
arrived, one a socket), ``frames`` (frames by type), ``connected``; ``refresh()`` brings them from the child,
``close()`` brings them a last time and ends it. The child speaks JSON lines: it reads the tokens, answers
``{"connected": n}``, then answers each ``snapshot`` or ``close`` on its stdin with what it has.

    python -m bench.listeners <ws url ending in access_token=>   (tokens as one JSON list on stdin)
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import time
from urllib.parse import urlsplit

from tools.devstack.stack import PYTHON

TICK = 0.01


class Listeners:
    def __init__(self, ws_url: str, tokens: list[str]):
        self.arrivals: dict[str, list[float]] = {}
        self.frames: dict[str, int] = {}
        self.lag_ms: list[float] = []  # the child's loop: each 10 ms tick's lateness (the reader's own delay)
        self.cpu = 0.0  # the child's CPU seconds reading, since all were connected
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


class _Socket(asyncio.Protocol):
    """One member's WebSocket, read as raw RFC 6455 frames (the server's are unmasked, uncompressed, unfragmented:
    gateway.realtime_server): every frame a read brings is parsed in one pass and stamped with that read's time.
    aiohttp's client took a coroutine switch and a message object a frame (8,000 frames/s for 200 msg/s into
    chats of 40)."""

    def __init__(self, request: bytes, arrivals: dict[str, list[float]], frames: dict[str, int]):
        self.request, self.arrivals, self.frames = request, arrivals, frames
        self.buffer = bytearray()
        self.upgraded = False
        self.ready = asyncio.get_running_loop().create_future()  # the gateway's "ready" greeting came
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(self.request)

    def connection_lost(self, exc) -> None:
        if not self.ready.done():
            self.ready.set_exception(exc or ConnectionError("closed before the greeting"))

    def data_received(self, data: bytes) -> None:
        at = time.time()
        buffer = self.buffer
        buffer += data
        if not self.upgraded:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            if not buffer.startswith(b"HTTP/1.1 101"):
                self.ready.set_exception(RuntimeError(f"no upgrade: {bytes(buffer[:200])!r}"))
                self.transport.close()
                return
            del buffer[:end + 4]
            self.upgraded = True
        offset = 0
        size = len(buffer)
        while size - offset >= 2:
            opcode, length = buffer[offset] & 0x0F, buffer[offset + 1] & 0x7F
            head = 2
            if length == 126:
                if size - offset < 4:
                    break
                length, head = int.from_bytes(buffer[offset + 2:offset + 4], "big"), 4
            elif length == 127:
                if size - offset < 10:
                    break
                length, head = int.from_bytes(buffer[offset + 2:offset + 10], "big"), 10
            if size - offset < head + length:
                break
            payload = bytes(buffer[offset + head:offset + head + length])
            offset += head + length
            if opcode == 1:
                self._text(payload, at)
            elif opcode == 9:  # ping: a pong with its payload, masked as a client's frames are (zero mask)
                self.transport.write(bytes((0x8A, 0x80 | len(payload))) + b"\0\0\0\0" + payload)
            elif opcode == 8:
                self.transport.close()
        del buffer[:offset]

    def _text(self, payload: bytes, at: float) -> None:
        message = json.loads(payload)
        kind = message["type"]
        self.frames[kind] = self.frames.get(kind, 0) + 1
        if kind == "MessagePosted":
            self.arrivals.setdefault(message["data"]["text"], []).append(at)
        elif kind == "ready" and not self.ready.done():
            self.ready.set_result(True)

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"\x88\x80\0\0\0\0")  # close, masked, empty
            self.transport.close()


async def _listen(ws_url: str, tokens: list[str]) -> None:
    arrivals: dict[str, list[float]] = {}
    frames: dict[str, int] = {}
    lag_ms: list[float] = []
    loop = asyncio.get_running_loop()
    url = urlsplit(ws_url)

    async def tick() -> None:
        while True:
            due = loop.time() + TICK
            await asyncio.sleep(TICK)
            lag_ms.append((loop.time() - due) * 1000)

    gate = asyncio.Semaphore(20)

    async def one(token: str) -> _Socket:
        request = (f"GET {url.path}?{url.query}{token} HTTP/1.1\r\nHost: {url.netloc}\r\nUpgrade: websocket\r\n"
                   f"Connection: Upgrade\r\nSec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n"
                   "Sec-WebSocket-Version: 13\r\n\r\n").encode()
        async with gate:
            _, socket = await loop.create_connection(lambda: _Socket(request, arrivals, frames), url.hostname,
                                                     url.port)
            await asyncio.wait_for(socket.ready, 60)
            return socket

    sockets = await asyncio.gather(*(one(t) for t in tokens))
    ticker = asyncio.create_task(tick())
    connected_cpu = time.process_time()  # reading from here on (not the start, the imports, the handshakes)
    print(json.dumps({"connected": len(sockets)}), flush=True)
    commands = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(commands), sys.stdin)
    while True:
        command = (await commands.readline()).decode().strip()
        print(json.dumps({"arrivals": arrivals, "frames": frames, "lag_ms": lag_ms,
                          "cpu": time.process_time() - connected_cpu}), flush=True)
        if command in ("close", ""):
            break
    ticker.cancel()
    for socket in sockets:
        socket.close()


def main() -> None:
    import uvloop  # libuv's loop, as the realtime server's: a read's callback in C

    tokens = json.loads(sys.stdin.readline())
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(_listen(sys.argv[1], tokens))


if __name__ == "__main__":
    main()
