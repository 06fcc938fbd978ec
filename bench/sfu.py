"""The SFU's forwarding: 1 publisher (camera about 500 kbps + microphone, and for the
lesson also a screen) to N subscribers, N rising until loss or the SFU's core
saturates; and a room of 25 microphones. The SFU runs as its own process (one core
of its own); the peers are aiortc in this process (they count packets, they do not
decode).

Both forwarding paths of the SFU in the same run (``SFERA_SFU_FAST_PATH``, issue #17): ``fast`` (the header
rewritten on the raw bytes, SRTP and sendto by the SFU itself) and ``rtppacket`` (an aiortc ``RtpPacket``
re-serialized per subscriber, as before), each on an SFU process of its own. The subscribers are *light* by
default: aiortc does their ICE, DTLS and RTCP, but their media datagrams are counted where the socket hands them
over (and the large ones decrypted for the latency), not queued through aiortc's receive path, so that 99 of
them in this process are not the bottleneck (``--aiortc-receivers``: through aiortc's receiver, as before).
The per-core forwarding figure of the goal (>= 120k packets/s per core) comes from a *flood*: one stream raised to
``--flood-rate`` packets/s to ``--flood-n`` subscribers, where forwarding, not the SFU's fixed costs per subscriber
(aiortc's RTCP and ICE at a lesson's 100-200 packets/s each), fills the SFU's CPU.

Baseline of the same run: a bare UDP relay loop in Python (recvfrom, then sendto to
N addresses), the ceiling for forwarding from Python on this machine. Reported:
forwarded packets per second per core of the SFU next to the baseline's, forward
latency (publisher's send to subscriber's receive, same clock), loss, and the
largest N one core carries.

Then SFU nodes (issue #17): one node carrying one lesson (teacher camera + screen + microphone to
``--pupils`` pupils), then two nodes carrying two lessons at once, placed by calls' node registry (the least
loaded node); each lesson's peers in a process of their own. Reported: packets/s out per node next to the lone
node's of the same run (a ratio), and the two together.

    python -m bench.sfu [--max 99] [--seconds 6] [--pupils 20] [--paths fast,rtppacket] [--aiortc-receivers]
                        [--nodes-only | --no-nodes]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import multiprocessing
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import jwt
import pylibsrtp
from aiortc import MediaStreamTrack

from bench import report
from bench.pipeline import percentile
from shared.contracts.join_token import TOKEN_AUDIENCE, join_token_ttl, token_secret
from tests.webrtc import Peer, Received

REPO = Path(__file__).resolve().parent.parent
STEPS = (1, 5, 10, 20, 40, 60, 80, 99)
PATHS = {"fast": "1", "rtppacket": "0"}  # SFERA_SFU_FAST_PATH of each forwarding path
# What each path is, as the rows say it: "fast" runs with every other switch at its default, as deployed (the
# receive shortcut, a wake-up's datagrams read at once, each subscriber's copies in one sendmmsg);
# ``bench.sfu_forward --process --paths`` takes those switches apart.
PATH_WORDS = {"fast": "fast path (as deployed: receive shortcut, reads drained, sendmmsg batches)",
              "rtppacket": "RtpPacket path (aiortc's receive and send)"}
GOAL_PPS = 120_000
RTP_HEADER = struct.Struct("!BBHII")  # as sfu.forward packs it
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    user, system = cpu_split(pid)
    return user + system


def cpu_split(pid: int) -> tuple[float, float]:
    """The process's (user, system) CPU seconds (/proc/<pid>/stat's utime and stime): Python and libsrtp vs the
    kernel (sendto, the loopback delivery to a receiver run in the sender's context)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICKS, int(fields[12]) / TICKS


def switches(pid: int) -> tuple[int, int]:
    """The process's (voluntary, involuntary) context switches so far (/proc/<pid>/status)."""
    found = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(found["voluntary_ctxt_switches"]), int(found["nonvoluntary_ctxt_switches"])


def scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(("sfera_sfu_forwarded_packets_total", "sfera_sfu_codec_instances",
                            "sfera_sfu_received_packets_total", "sfera_sfu_batched_sends",
                            "sfera_sfu_fast_received_packets")):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def received(port: int) -> float:
    return sum(v for k, v in scrape(port).items() if k.startswith("sfera_sfu_received_packets_total"))


def forwarded(port: int) -> float:
    return sum(v for k, v in scrape(port).items() if k.startswith("sfera_sfu_forwarded_packets_total"))


def fast_received(port: int) -> float:
    """Packets the SFU's receive shortcut took so far (``sfera_sfu_fast_received_packets``)."""
    return sum(v for k, v in scrape(port).items() if k.startswith("sfera_sfu_fast_received_packets"))


def batched_sends(port: int) -> float:
    """The SFU's sendmmsg calls of batched sending so far (``sfera_sfu_batched_sends``; 0 on other paths)."""
    return sum(v for k, v in scrape(port).items() if k.startswith("sfera_sfu_batched_sends"))


def token(call_id: str, user_id: str, rights: list[str], role: str = "participant") -> str:
    now = int(time.time())
    return jwt.encode({"aud": TOKEN_AUDIENCE, "sub": user_id, "call": call_id, "room": call_id, "role": role,
                       "rights": rights, "muted": False, "iat": now, "exp": now + join_token_ttl()}, token_secret(),
                      algorithm="HS256")


# -- the baseline: a bare UDP relay loop ------------------------------------------------------------------
def _relay(port_q, fanout: int, sink_port: int, seconds: float, result_q) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.5)
    out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    port_q.put(sock.getsockname()[1])
    sent = 0
    started = None
    while True:
        try:
            data = sock.recv(2048)
        except TimeoutError:
            break
        if started is None:
            started = time.process_time()
            wall = time.monotonic()
        for _ in range(fanout):
            out.sendto(data, ("127.0.0.1", sink_port))
        sent += fanout
        if time.monotonic() - wall > seconds:
            break
    result_q.put((sent, time.process_time() - (started or 0)))


def udp_baseline(fanout: int = 50, seconds: float = 3.0) -> float:
    """Packets per CPU-second a Python loop relays (recv once, sendto ``fanout`` times)."""
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    port_q, result_q = multiprocessing.Queue(), multiprocessing.Queue()
    relay = multiprocessing.Process(target=_relay, args=(port_q, fanout, sink.getsockname()[1], seconds, result_q))
    relay.start()
    relay_port = port_q.get()
    feeder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    payload = bytes(1100)
    deadline = time.monotonic() + seconds + 0.5
    while time.monotonic() < deadline:
        for _ in range(20):
            feeder.sendto(payload, ("127.0.0.1", relay_port))
        time.sleep(0.0005)
    sent, cpu = result_q.get(timeout=30)
    relay.join()
    sink.close()
    return sent / cpu if cpu else 0.0


def _loopback_reader(woken: bool, addresses, n: int, stop) -> None:
    socks = []
    for _ in range(n):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        socks.append(sock)
    addresses.put([s.getsockname() for s in socks])
    if woken:  # as an event loop reads: asleep in epoll, woken by a datagram
        poll = select.epoll()
        by_fd = {s.fileno(): s for s in socks}
        for fd in by_fd:
            poll.register(fd, select.EPOLLIN)
        while not stop.is_set():
            for fd, _ in poll.poll(0.1):
                try:
                    by_fd[fd].recv(2048)
                except BlockingIOError:
                    pass
        return
    while not stop.is_set():  # every 2 ms, all that waits: no sleeper for a datagram to wake
        time.sleep(0.002)
        for sock in socks:
            while True:
                try:
                    sock.recv(2048)
                except BlockingIOError:
                    break


def loopback_receivers(woken: bool, n: int = 40, rate: int = 2000, seconds: float = 4.0) -> tuple[float, float]:
    """A sender's CPU a datagram (µs user, µs system) sending ``rate`` 1,030-byte datagrams a second from ``n``
    sockets to ``n`` sockets read by 2 other processes, ``woken`` by each datagram or reading every 2 ms: on
    loopback the receiver's delivery, its wake-up and the preemption of the sender by the woken reader run in the
    sender's ``sendto`` (what the flood's light subscribers cost the SFU; a NIC would take the datagram instead)."""
    spawn = multiprocessing.get_context("spawn")
    addresses, stop = spawn.Queue(), spawn.Event()
    readers = [spawn.Process(target=_loopback_reader, args=(woken, addresses, n // 2, stop)) for _ in range(2)]
    for reader in readers:
        reader.start()
    targets = addresses.get(timeout=30) + addresses.get(timeout=30)
    senders = []
    for _ in targets:
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sender.bind(("127.0.0.1", 0))
        senders.append(sender)
    data = memoryview(bytearray(1030))
    before, started, count, sent = os.times(), time.monotonic(), 0, 0
    while time.monotonic() - started < seconds:
        due = int((time.monotonic() - started) * rate)
        while count < due:
            count += 1
            for sender, target in zip(senders, targets, strict=True):
                sender.sendto(data, target)
            sent += len(targets)
        time.sleep(0.0005)
    after = os.times()
    stop.set()
    for reader in readers:
        reader.join(timeout=10)
    for sender in senders:
        sender.close()
    return (after.user - before.user) / sent * 1e6, (after.system - before.system) / sent * 1e6


# -- the SFU ------------------------------------------------------------------------------------------------------
PROFILED = """
import cProfile, runpy, signal, sys, time
profiler, out = cProfile.Profile(time.process_time), sys.argv[1]
signal.signal(signal.SIGUSR1, lambda *_: profiler.enable())
signal.signal(signal.SIGUSR2, lambda *_: (profiler.disable(), profiler.dump_stats(out)))
sys.argv = ["sfu"]
runpy.run_module("sfu", run_name="__main__")
"""  # an SFU whose cProfile runs between SIGUSR1 and SIGUSR2 (``SfuProcess(profile=...)``), then is written; in CPU
# time: on a loaded machine the wall clock would charge a sendto with the time the SFU waited for a core after it


# where the kernel's part of a sample is the loopback RECEIVE path (the subscriber's side: on loopback the
# sender's sendto delivers the datagram to the reader's socket and wakes the reader in a softirq of its own context;
# a NIC would take the datagram instead): a call chain through one of these
LOOPBACK_RECEIVE = ("net_rx_action", "process_backlog", "__netif_receive_skb")
SCHEDULE = ("__schedule",)  # the process switched out (preempted at a system call's return, or asleep)


def perf_split(data: Path) -> dict[str, float]:
    """Shares of a ``perf record -g`` of one process's CPU (cpu-clock samples: each one the same CPU time): ``user``
    (the sampled frame in user space: Python, libsrtp, OpenSSL), ``receive`` (kernel, under the loopback receive
    path: ``LOOPBACK_RECEIVE``), ``schedule`` (kernel, switching out: ``SCHEDULE``), ``send`` (the rest of the
    kernel: the send system call itself, epoll, reading the publisher's socket), and ``samples``."""
    text = subprocess.run(["perf", "script", "-i", str(data), "-F", "ip,sym,dso"], capture_output=True, text=True,
                          check=False).stdout
    counts = {"user": 0, "receive": 0, "schedule": 0, "send": 0}
    for block in text.split("\n\n"):
        frames = [line.strip() for line in block.strip().splitlines() if line.strip()]
        if not frames:
            continue
        if "kernel.kallsyms" not in frames[0]:
            counts["user"] += 1
        elif any(marker in frame for frame in frames for marker in LOOPBACK_RECEIVE):
            counts["receive"] += 1
        elif any(marker in frame for frame in frames for marker in SCHEDULE):
            counts["schedule"] += 1
        else:
            counts["send"] += 1
    total = sum(counts.values())
    return {**{k: v / total if total else 0.0 for k, v in counts.items()}, "samples": float(total)}


class SfuProcess:
    def __init__(self, log_dir: Path, name: str = "bench", fast_path: str | None = None,
                 profile: Path | None = None, fast_receive: str | None = None,
                 extra_env: dict[str, str] | None = None, perf: Path | None = None):
        self.name = name
        self.perf = perf  # ``perf record -g`` of the SFU between profiling(True) and profiling(False), written there
        self.perf_process: subprocess.Popen | None = None
        self.port = free_port()
        env = {**os.environ, "SFERA_SFU_PORT": str(self.port), "SFERA_SFU_NODE": name,
               "SFERA_AMQP_URI": f"amqp://guest:guest@127.0.0.1:{free_port()}/", "SFERA_LOG_LEVEL": "ERROR",
               "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "services" / "sfu")])}
        if fast_path is not None:
            env["SFERA_SFU_FAST_PATH"] = fast_path
        if fast_receive is not None:
            env["SFERA_SFU_FAST_RECEIVE"] = fast_receive
        env.update(extra_env or {})
        self.log = open(log_dir / f"sfu-{name}.log", "wb")
        self.profile = profile
        command = ["-m", "sfu"] if profile is None else ["-c", PROFILED, str(profile)]
        self.process = subprocess.Popen([sys.executable, *command], env=env, stdout=self.log,
                                        stderr=subprocess.STDOUT, cwd=REPO)
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/livez", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("the SFU did not start") from None
                time.sleep(0.2)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def profiling(self, on: bool) -> None:
        """Start (``on``) or stop and write the SFU's cProfile (only with ``profile``) and its ``perf record``
        (only with ``perf``)."""
        if self.profile is not None:
            self.process.send_signal(signal.SIGUSR1 if on else signal.SIGUSR2)
        if self.perf is not None and on:
            self.perf_process = subprocess.Popen(
                ["perf", "record", "-q", "-e", "cpu-clock", "-F", "2000", "-g", "-p", str(self.pid), "-o",
                 str(self.perf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        elif self.perf_process is not None:
            self.perf_process.send_signal(signal.SIGINT)
            self.perf_process.wait(timeout=60)
            self.perf_process = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=15)
        self.log.close()


class Latency:
    """Publisher's send time of each payload, and subscribers' receive times. A payload sent twice (the tone's
    Opus packets repeat with its one-second loop) is timed by neither: an arrival would match the wrong send."""

    def __init__(self):
        self.sent: dict[bytes, float] = {}
        self.repeated: set[bytes] = set()
        self.samples: list[float] = []

    def sending(self, key: bytes) -> None:
        if key in self.sent:
            self.repeated.add(key)
        self.sent[key] = time.perf_counter()

    def sent_at(self, key: bytes) -> float | None:
        return None if key in self.repeated else self.sent.get(key)

    def hook_publisher(self, peer: Peer) -> None:
        transport = peer.pc.getTransceivers()[0].sender.transport
        original = transport._send_rtp

        async def send(data: bytes) -> None:
            if len(data) > 200 and 128 <= data[0] < 192 and not 192 <= data[1] <= 223:  # RTP, not RTCP
                self.sending(digest(data))
            await original(data)

        transport._send_rtp = send

    def on_packet(self, mid: str, packet) -> None:
        if len(packet.payload) > 150:
            self.on_payload(packet.payload)

    def on_payload(self, payload: bytes) -> None:
        at = self.sent_at(digest(payload))
        if at is not None and len(self.samples) < 200_000:
            self.samples.append(time.perf_counter() - at)


def lighten(peer: Peer, latency: Latency, every: int = 1) -> None:
    """A light subscriber: its media datagrams are counted where its UDP sockets hand them over (RTP's header is
    not encrypted), the large ones decrypted with its SRTP session for the latency (a hash of the payload's end);
    ICE, DTLS and RTCP still go to aiortc. aiortc's receive path (STUN parse, a queue, SRTP, RtpPacket, the
    receiver) costs some 40 µs a packet: 99 subscribers of one process then saturate its core before the SFU's.
    ``every``: decrypt one large packet in so many for the latency (a flood's rate)."""
    got = peer.received.setdefault("light", Received("rtp"))
    dtls = peer.pc.getTransceivers()[0].receiver.transport  # max-bundle: one transport for all
    connection = dtls.transport._connection
    for protocol in connection._protocols:
        original = protocol.datagram_received

        def light(data: bytes, addr, original=original) -> None:
            if len(data) > 12 and 128 <= data[0] < 192 and not 192 <= data[1] <= 223 and dtls._rx_srtp is not None:
                got.frames += 1
                if len(data) > 200 and not got.frames % every:
                    try:
                        payload = dtls._rx_srtp.unprotect(data)[12:]
                    except pylibsrtp.Error:
                        return
                    latency.on_payload(payload)
                return
            original(data, addr)

        protocol.datagram_received = light


def digest(payload: bytes) -> bytes:
    return hashlib.blake2b(payload[-64:], digest_size=8).digest()


class Arrivals:
    """A subscribers' worker's side of the latency: (payload digest, arrival time) of the large packets, matched
    with the publisher's send times by the main process (``perf_counter`` is the system's monotonic clock)."""

    def __init__(self):
        self.seen: list[tuple[bytes, float]] = []

    def on_payload(self, payload: bytes) -> None:
        if len(self.seen) < 200_000:
            self.seen.append((digest(payload), time.perf_counter()))

    def on_packet(self, mid: str, packet) -> None:
        if len(packet.payload) > 150:
            self.on_payload(packet.payload)


def _subscribers_worker(url: str, tokens: list[str], light: bool, conn, slots: tuple[int, int] = (2, 1),
                        every: int = 1, batch: float = 0.0) -> None:
    asyncio.run(_subscribers(url, tokens, light, conn, slots, every, batch))


def read_in_batches(peers: list[Peer], every: float) -> asyncio.Task:
    """Light subscribers that read their sockets every ``every`` seconds, all that is waiting at once, instead of
    being woken by each datagram: their sockets leave the event loop's selector (so a datagram the SFU sends finds
    no sleeper to wake: on loopback that wake-up, and the preemption of the sender by the woken reader, run in the
    SFU's sendto and count as its CPU), with 4 MB of receive buffer for the wait. Everything read still goes to the
    protocol (ICE, DTLS, RTCP as before, at most ``every`` late)."""
    loop = asyncio.get_running_loop()
    sockets = []
    for peer in peers:
        connection = peer.pc.getTransceivers()[0].receiver.transport.transport._connection
        for protocol in connection._protocols:
            sock = protocol.transport._sock
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            loop._remove_reader(sock.fileno())  # asyncio's public remove_reader refuses a transport's socket
            sockets.append((sock, protocol))

    async def drain() -> None:
        while True:
            await asyncio.sleep(every)
            for sock, protocol in sockets:
                while True:
                    try:
                        data, addr = sock.recvfrom(2048)
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError:
                        break
                    protocol.datagram_received(data, addr)

    return asyncio.ensure_future(drain())


async def _subscribers(url: str, tokens: list[str], light: bool, conn, slots: tuple[int, int] = (2, 1),
                       every: int = 1, batch: float = 0.0) -> None:
    """Some of a fan-out's subscribers, in a process of their own; answers ``count`` (packets, peers receiving),
    ``clear``, ``batch`` (from now on light subscribers read in batches: ``read_in_batches``, every ``batch``
    seconds) and ``stop`` (closes them, answers the arrivals) on ``conn``. A peer that cannot connect (a machine
    too loaded to finish DTLS in time) is left out and counted as not connected."""
    arrivals = Arrivals()
    peers = [Peer(url, t, video_slots=slots[0], audio_slots=slots[1], decode=False) for t in tokens]
    for peer in peers:
        peer.on_packet = arrivals.on_packet
    outcomes = await asyncio.gather(*(p.connect(timeout=60) for p in peers), return_exceptions=True)
    for peer, outcome in zip(list(peers), outcomes, strict=True):
        if isinstance(outcome, BaseException):
            peers.remove(peer)
            await peer.close()
    if light:
        for peer in peers:
            lighten(peer, arrivals, every)
    loop = asyncio.get_running_loop()
    batching: list[asyncio.Task] = []  # the batch reader, once asked for
    while True:
        command = await loop.run_in_executor(None, conn.recv)
        if command == "count":
            frames = [sum(r.frames for r in p.received.values()) for p in peers]
            conn.send((sum(frames), sum(1 for f in frames if f > 20), len(peers)))
        elif command == "clear":
            arrivals.seen.clear()
            conn.send(None)
        elif command == "batch":
            if light and batch:
                batching.append(read_in_batches(peers, batch))
            conn.send(None)
        else:
            for peer in peers:
                await peer.close()
            conn.send(arrivals.seen)
            return


class Subscribers:
    """A fan-out's ``n`` subscribers: in this process (``procs`` 1) or spread over ``procs`` processes of their
    own, so that the publisher's encoder and the subscribers' event loops do not starve each other. ``slots``:
    each one's (video, audio) slots; ``every``: a light subscriber times one large packet in so many."""

    def __init__(self, url: str, call_id: str, n: int, light: bool, latency: Latency, procs: int,
                 slots: tuple[int, int] = (2, 1), every: int = 1, batch: float = 0.0):
        self.url, self.light, self.latency, self.slots, self.every = url, light, latency, slots, every
        self.batch = batch
        self.tokens = [token(call_id, str(uuid.uuid4()), ["subscribe"], "viewer") for _ in range(n)]
        self.procs = max(1, min(procs, n))
        self.peers: list[Peer] = []
        self.pipes: list = []
        self.workers: list = []

    async def start(self) -> None:
        if self.procs == 1:
            self.peers = [Peer(self.url, t, video_slots=self.slots[0], audio_slots=self.slots[1], decode=False)
                          for t in self.tokens]
            for peer in self.peers:
                peer.on_packet = self.latency.on_packet
            await asyncio.gather(*(p.connect() for p in self.peers))
            if self.light:
                for peer in self.peers:
                    lighten(peer, self.latency, self.every)
            return
        spawn = multiprocessing.get_context("spawn")
        for i in range(self.procs):
            parent, child = spawn.Pipe()
            worker = spawn.Process(target=_subscribers_worker, args=(self.url, self.tokens[i::self.procs],
                                                                     self.light, child, self.slots, self.every,
                                                                     self.batch),
                                   daemon=True)
            worker.start()
            self.pipes.append(parent)
            self.workers.append(worker)

    async def _ask(self, command: str) -> list:
        loop = asyncio.get_running_loop()
        for pipe in self.pipes:
            pipe.send(command)
        return [await loop.run_in_executor(None, pipe.recv) for pipe in self.pipes]

    async def counts(self) -> tuple[int, int, int]:
        """(packets received in all, subscribers that received more than 20, subscribers connected)."""
        if self.procs == 1:
            frames = [sum(r.frames for r in p.received.values()) for p in self.peers]
            return sum(frames), sum(1 for f in frames if f > 20), len(self.peers)
        answers = await self._ask("count")
        return sum(a[0] for a in answers), sum(a[1] for a in answers), sum(a[2] for a in answers)

    async def clear(self) -> None:
        self.latency.samples.clear()
        if self.procs > 1:
            await self._ask("clear")

    async def read_in_batches(self) -> None:
        """From now on light subscribers read every ``batch`` seconds, not woken per datagram (``batch`` set)."""
        if self.batch and self.light:
            if self.procs == 1:
                self._batching = read_in_batches(self.peers, self.batch)
            else:
                await self._ask("batch")

    async def close(self) -> None:
        if self.procs == 1:
            for peer in self.peers:
                await peer.close()
            return
        for seen in await self._ask("stop"):
            for key, at in seen:
                sent = self.latency.sent_at(key)
                if sent is not None:
                    self.latency.samples.append(at - sent)
        for worker in self.workers:
            worker.join(timeout=30)


async def fan_out(sfu: SfuProcess | Node, n: int, seconds: float, lesson: bool, call_id: str | None = None,
                  light: bool = False, procs: int = 1) -> dict:
    call_id = call_id or str(uuid.uuid4())
    latency = Latency()
    publisher = Peer(sfu.url, token(call_id, str(uuid.uuid4()), ["subscribe", "audio", "video", "screen"], "admin"),
                     camera_luma=90, tone_hz=440, screen_luma=200 if lesson else None, video_slots=0,
                     audio_slots=0, decode=False, noise=True)
    await publisher.connect()
    latency.hook_publisher(publisher)
    subscribers = Subscribers(sfu.url, call_id, n, light, latency, procs)
    await subscribers.start()
    # everyone connected and receiving
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        _, ready, connected = await subscribers.counts()
        if ready >= connected:
            break
        await asyncio.sleep(0.5)
    await asyncio.sleep(1.0)
    await subscribers.clear()
    got0 = (await subscribers.counts())[0]
    fwd0, cpu0, wall0 = forwarded(sfu.port), cpu_seconds(sfu.pid), time.monotonic()
    await asyncio.sleep(seconds)
    fwd1, cpu1, wall1 = forwarded(sfu.port), cpu_seconds(sfu.pid), time.monotonic()
    got1 = (await subscribers.counts())[0]
    await publisher.close()
    await subscribers.close()
    wall = wall1 - wall0
    out_pps = (fwd1 - fwd0) / wall
    cpu = (cpu1 - cpu0) / wall
    lat = sorted(latency.samples)
    return {"n": n, "connected": connected, "procs": subscribers.procs, "out_pps": out_pps, "cpu": cpu,
            "pps_per_core": out_pps / cpu if cpu else 0, "loss": max(0.0, 1 - (got1 - got0) / max(1, fwd1 - fwd0)),
            "p50_ms": percentile(lat, 0.5) * 1000 if lat else float("nan"),
            "p99_ms": percentile(lat, 0.99) * 1000 if lat else float("nan")}


class Silence(MediaStreamTrack):
    """An audio track that never yields: the flood's publisher writes its packets itself."""

    kind = "audio"

    async def recv(self):
        await asyncio.Event().wait()


async def flood(sfu: SfuProcess, n: int, seconds: float, rate: int, size: int = 1000, light: bool = True,
                procs: int = 1, batch: float = 0.0) -> dict:
    """Forwarding capacity, not a lesson: one publisher's microphone stream raised to ``rate`` packets/s of
    ``size`` bytes (written into its SRTP transport by this process, continuing the stream aiortc began; the SFU
    forwards an audio packet as any other, never decoding it) to ``n`` subscribers. At a lesson's 100-200 packets
    per subscriber the SFU's fixed costs per subscriber (aiortc's RTCP and ICE) hide the per-packet cost the
    goal (issue #17) is about; here forwarding dominates the SFU's CPU. ``batch``: the light subscribers read
    their sockets every ``batch`` seconds once connected (``read_in_batches``), not woken by each datagram. Besides
    packets per core: the SFU's user and system CPU (``user_cpu``, ``system_cpu``, of a core), context switches
    a second (``voluntary_cs``: the SFU waited for packets, none: it never ran out of work; ``involuntary_cs``:
    preempted, e.g. by the reader its datagram woke), packets a second the pump sent (``pumped_pps``) and the SFU
    took in (``in_pps``), and with batched sending the packets a ``sendmmsg`` carried on average
    (``packets_a_sendmmsg``; 0: none made), and the share of the packets taken in that the receive shortcut took
    (``shortcut_share``)."""
    call_id = str(uuid.uuid4())
    latency = Latency()
    publisher = Peer(sfu.url, token(call_id, str(uuid.uuid4()), ["subscribe", "audio"], "admin"), tone_hz=440,
                     video_slots=0, audio_slots=0, decode=False)
    await publisher.connect()
    transceiver = publisher.pc.getTransceivers()[0]
    sender, dtls = transceiver.sender, transceiver.sender.transport
    last_seq = [0]
    original = dtls._send_rtp

    async def send(data: bytes) -> None:
        if not 192 <= data[1] <= 223:
            last_seq[0] = int.from_bytes(data[2:4], "big")
        await original(data)

    dtls._send_rtp = send
    # ``procs`` > 1: the subscribers in processes of their own, so that receiving does not starve the pump
    subscribers = Subscribers(sfu.url, call_id, n, light, latency, procs, slots=(0, 1), every=16, batch=batch)
    await subscribers.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        _, ready, connected = await subscribers.counts()
        if ready >= connected:
            break
        await asyncio.sleep(0.2)
    await subscribers.read_in_batches()
    sender.replaceTrack(Silence())
    await asyncio.sleep(0.2)  # aiortc's last packet of the tone is out
    payload_type, ssrc = transceiver._codecs[0].payloadType, sender._ssrc
    body = os.urandom(size - 8)
    stop = asyncio.Event()
    pumped = [0]  # packets the pump sent (on a loaded machine fewer than ``rate`` a second)

    async def pump() -> None:
        seq, ts, count = last_seq[0], int(time.time() * 48000), 0
        started = time.monotonic()
        while not stop.is_set():
            due = int((time.monotonic() - started) * rate)
            while count < due:
                seq, ts, count = (seq + 1) & 0xFFFF, (ts + 480) & 0xFFFFFFFF, count + 1
                pumped[0] = count
                data = RTP_HEADER.pack(0x80, payload_type, seq, ts, ssrc) + body + count.to_bytes(8, "big")
                latency.sending(digest(data))
                await original(data)
            await asyncio.sleep(0.005)

    pumping = asyncio.ensure_future(pump())
    await asyncio.sleep(1.5)
    await subscribers.clear()
    got0 = (await subscribers.counts())[0]
    in0, pumped0 = received(sfu.port), pumped[0]
    fwd0, (user0, sys0), cs0, wall0 = forwarded(sfu.port), cpu_split(sfu.pid), switches(sfu.pid), time.monotonic()
    sends0, shortcut0 = batched_sends(sfu.port), fast_received(sfu.port)
    cpu0 = user0 + sys0
    sfu.profiling(True)
    await asyncio.sleep(seconds)
    sfu.profiling(False)
    fwd1, (user1, sys1), cs1, wall1 = forwarded(sfu.port), cpu_split(sfu.pid), switches(sfu.pid), time.monotonic()
    sends1, shortcut1 = batched_sends(sfu.port), fast_received(sfu.port)
    in1, pumped1 = received(sfu.port), pumped[0]
    cpu1 = user1 + sys1
    got1 = (await subscribers.counts())[0]
    stop.set()
    await pumping
    # the same peers, nothing to forward: what the SFU spends on them anyway (aiortc's RTCP and ICE, its own ticks)
    await asyncio.sleep(0.5)
    cpu2, wall2 = cpu_seconds(sfu.pid), time.monotonic()
    await asyncio.sleep(seconds)
    idle = (cpu_seconds(sfu.pid) - cpu2) / (time.monotonic() - wall2)
    await publisher.close()
    await subscribers.close()
    wall = wall1 - wall0
    out_pps, cpu = (fwd1 - fwd0) / wall, (cpu1 - cpu0) / wall
    lat = sorted(latency.samples)
    return {"n": n, "rate": rate, "out_pps": out_pps, "cpu": cpu, "pps_per_core": out_pps / cpu if cpu else 0,
            "idle_cpu": idle, "forwarding_pps_per_core": out_pps / (cpu - idle) if cpu > idle else 0,
            "user_cpu": (user1 - user0) / wall, "system_cpu": (sys1 - sys0) / wall,
            "pumped_pps": (pumped1 - pumped0) / wall, "in_pps": (in1 - in0) / wall,
            "voluntary_cs": (cs1[0] - cs0[0]) / wall, "involuntary_cs": (cs1[1] - cs0[1]) / wall,
            "packets_a_sendmmsg": (fwd1 - fwd0) / (sends1 - sends0) if sends1 > sends0 else 0.0,
            "shortcut_share": (shortcut1 - shortcut0) / (in1 - in0) if in1 > in0 else 0.0,
            "loss": max(0.0, 1 - (got1 - got0) / max(1, fwd1 - fwd0)),
            "p50_ms": percentile(lat, 0.5) * 1000 if lat else float("nan"),
            "p99_ms": percentile(lat, 0.99) * 1000 if lat else float("nan")}


async def microphones(sfu: SfuProcess, n: int, seconds: float) -> dict:
    call_id = str(uuid.uuid4())
    peers = [Peer(sfu.url, token(call_id, str(uuid.uuid4()), ["subscribe", "audio"]), tone_hz=200 + 20 * i,
                  amplitude=0.05 + 0.3 * (i % 5 == 0), video_slots=0, audio_slots=3, decode=False)
             for i in range(n)]
    await asyncio.gather(*(p.connect() for p in peers))
    await asyncio.sleep(3)
    got0 = sum(r.frames for p in peers for r in p.received.values())
    in0 = received(sfu.port)
    fwd0, cpu0, wall0 = forwarded(sfu.port), cpu_seconds(sfu.pid), time.monotonic()
    await asyncio.sleep(seconds)
    fwd1, cpu1, wall1 = forwarded(sfu.port), cpu_seconds(sfu.pid), time.monotonic()
    in1 = received(sfu.port)
    got1 = sum(r.frames for p in peers for r in p.received.values())
    for p in peers:
        await p.close()
    wall = wall1 - wall0
    return {"n": n, "out_pps": (fwd1 - fwd0) / wall, "cpu": (cpu1 - cpu0) / wall,
            "in_pps": (in1 - in0) / wall, "loss": max(0.0, 1 - (got1 - got0) / max(1, fwd1 - fwd0))}


# -- SFU nodes (issue #17): two nodes carrying two lessons ---------------------------------------------------------
@dataclass(frozen=True)
class Node:
    """An SFU node as a lesson's peers (in a process of their own) need it."""

    name: str
    url: str
    port: int
    pid: int


def _lesson(node: Node, pupils: int, seconds: float, call_id: str, results) -> None:
    results.put((node.name, asyncio.run(fan_out(node, pupils, seconds, lesson=True, call_id=call_id))))


def lessons_on(placed: list[tuple[Node, str]], pupils: int, seconds: float) -> dict[str, dict]:
    """One lesson per (node, call), at the same time, each lesson's peers in a process of their own (the peers of
    two lessons in one process would be the bottleneck, not the nodes)."""
    spawn = multiprocessing.get_context("spawn")
    results = spawn.Queue()
    workers = [spawn.Process(target=_lesson, args=(node, pupils, seconds, call_id, results))
               for node, call_id in placed]
    for w in workers:
        w.start()
    out = dict(results.get(timeout=300) for _ in workers)
    for w in workers:
        w.join(timeout=30)
    return out


def two_nodes(log_dir: Path, pupils: int, seconds: float) -> dict:
    """One node carrying one lesson, then two nodes carrying two lessons at once (teacher camera + screen +
    microphone to ``pupils`` each), in the same run. calls' NodeRegistry places the lessons as it does the
    platform's calls: the least loaded live node (here told by hand what the nodes' heartbeats say)."""
    from calls.nodes import NodeRegistry

    procs = [SfuProcess(log_dir, f"bench-{i}") for i in (1, 2)]
    nodes = [Node(p.name, p.url, p.port, p.pid) for p in procs]
    try:
        alone = lessons_on([(nodes[0], str(uuid.uuid4()))], pupils, seconds)[nodes[0].name]
        registry = NodeRegistry()
        for node in nodes:
            registry.heard(node.name, node.url)
        placed = []
        for _ in range(2):
            call_id, chosen = str(uuid.uuid4()), registry.pick()
            registry.assigned(chosen.name, call_id)
            placed.append((next(n for n in nodes if n.name == chosen.name), call_id))
        both = lessons_on(placed, pupils, seconds)
    finally:
        for p in procs:
            p.stop()
    return {"pupils": pupils, "alone": alone, "nodes": both, "placed": [n.name for n, _ in placed]}


def print_two_nodes(r: dict) -> None:
    alone = r["alone"]
    print(f"SFU nodes: one lesson (teacher camera + screen + microphone -> {r['pupils']} pupils) on one node, "
          f"then two lessons at once placed by calls' registry on {' and '.join(r['placed'])}")
    print(f"  one node, one lesson:   {alone['out_pps']:>8,.0f} pkt/s out on {alone['cpu']:.2f} of a core, "
          f"loss {alone['loss']:.1%}")
    total = 0.0
    for name, x in sorted(r["nodes"].items()):
        total += x["out_pps"]
        print(f"  {name}, its lesson:    {x['out_pps']:>8,.0f} pkt/s out on {x['cpu']:.2f} of a core, loss "
              f"{x['loss']:.1%}, p99 {x['p99_ms']:.1f} ms: {x['out_pps'] / alone['out_pps']:.2f}x the lone node")
    print(f"  two nodes together: {total:,.0f} pkt/s = {total / alone['out_pps']:.2f}x one node "
          f"(machine load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)", flush=True)


def forwarding(log_dir: Path, path: str, args: argparse.Namespace, baseline: float) -> dict:
    """The fan-out steps and the lesson on an SFU process of its own that forwards on ``path``."""
    light = not args.aiortc_receivers
    sfu = SfuProcess(log_dir, f"bench-{path}", fast_path=PATHS[path])
    results = []
    try:
        print(f"-- {PATH_WORDS[path]} (SFERA_SFU_FAST_PATH={PATHS[path]}), "
              f"{'light' if light else 'aiortc'} receivers")
        print(f"{'N':>4} {'out pkt/s':>10} {'SFU cores':>9} {'pkt/s/core':>11} {'vs UDP loop':>11} "
              f"{'loss':>6} {'p50 ms':>7} {'p99 ms':>7}")
        for n in [s for s in STEPS if s <= args.max]:
            r = asyncio.run(fan_out(sfu, n, args.seconds, lesson=False, light=light,
                                    procs=args.procs if n >= 10 else 1))
            results.append(r)
            print(f"{r['n']:>4} {r['out_pps']:>10,.0f} {r['cpu']:>9.2f} {r['pps_per_core']:>11,.0f} "
                  f"{r['pps_per_core'] / baseline:>10.2f}x {r['loss']:>6.1%} {r['p50_ms']:>7.1f} {r['p99_ms']:>7.1f}"
                  + (f"  (only {r['connected']} connected)" if r["connected"] < n else ""), flush=True)
            if r["cpu"] > 0.95 or r["loss"] > 0.02:
                break
        fits = [r["n"] for r in results if r["cpu"] <= 0.95 and r["loss"] <= 0.02]
        per_sub = results[-1]["out_pps"] / results[-1]["n"] if results else 0
        core = max(r["pps_per_core"] for r in results) if results else 0
        print(f"largest N measured within one core and 2% loss: {max(fits) if fits else 0}; "
              f"at {core:,.0f} pkt/s per core one core would carry about {core / max(1, per_sub):,.0f} subscribers "
              f"({per_sub:,.0f} pkt/s each)")
        burst = asyncio.run(flood(sfu, args.flood_n, args.seconds, args.flood_rate, light=light,
                                  procs=args.procs if light else 1))
        print(f"flood: 1 stream of {burst['rate']:,} pkt/s (1,000 bytes) -> {burst['n']} subscribers: "
              f"{burst['out_pps']:,.0f} pkt/s out on {burst['cpu']:.2f} of a core = {burst['pps_per_core']:,.0f} "
              f"pkt/s per core ({burst['pps_per_core'] / baseline:.2f}x the UDP loop), loss {burst['loss']:.1%}, "
              f"p50 {burst['p50_ms']:.1f} ms, p99 {burst['p99_ms']:.1f} ms", flush=True)
        lesson = asyncio.run(fan_out(sfu, min(99, args.max), args.seconds, lesson=True, light=light,
                                     procs=args.procs))
        print(f"lesson: teacher camera + screen + microphone -> {lesson['n']} pupils ({lesson['connected']} "
              f"connected, in {lesson['procs']} "
              f"processes): {lesson['out_pps']:,.0f} pkt/s out on {lesson['cpu']:.2f} of a core "
              f"({lesson['pps_per_core']:,.0f} pkt/s per core), "
              f"loss {lesson['loss']:.1%}, p50 {lesson['p50_ms']:.1f} ms, p99 {lesson['p99_ms']:.1f} ms", flush=True)
        out = {"path": path, "steps": results, "core": core, "flood": burst, "lesson": lesson}
        if path == "fast" or len(args.paths) == 1:
            out["microphones"] = mics = asyncio.run(microphones(sfu, 25, args.seconds))
            print(f"25 microphones in one room (each hears the 3 loudest): {mics['in_pps']:,.0f} pkt/s in, "
                  f"{mics['out_pps']:,.0f} pkt/s out, {mics['cpu']:.2f} of a core, loss {mics['loss']:.1%}")
        codecs = {k: v for k, v in scrape(sfu.port).items() if k.startswith("sfera_sfu_codec_instances")}
        print(f"codecs created in the SFU: {int(sum(codecs.values()))}")
        return out
    finally:
        sfu.stop()


def in_process(path: str, n: int = 50) -> dict:
    """``bench.sfu_forward``: the SFU's forwarding of one packet to ``n`` subscribers in one process (real SRTP
    sessions and UDP sockets, no peers), with the bare sendto loop of the same process next to it."""
    env = {**os.environ, "SFERA_SFU_FAST_PATH": PATHS[path],
           "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "services" / "sfu")])}
    done = subprocess.run([sys.executable, "-m", "bench.sfu_forward", "--n", str(n)], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=300, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def record(runs: dict[str, dict], baseline: float, micro: dict[str, dict] | None = None) -> None:
    """The headline rows (bench.report): each path's forwarded packets per core next to the bare UDP loop's, the
    fast path next to the RtpPacket path, the lesson's loss and p50."""
    for path, m in (micro or {}).items():
        report.row("sfu", f"forwarding in one process, {path} path: 1 packet -> {m['n']} subscribers "
                   "(pkt/s per core)", f"{m['pps_per_core']:,.0f} ({m['us_per_packet']:.1f} µs a packet)",
                   f"bare sendto loop {m['bare_pps_per_core']:,.0f}", m["pps_per_core"] / m["bare_pps_per_core"],
                   f">= {GOAL_PPS:,} pkt/s per core")
    for path, run in runs.items():
        burst = run["flood"]
        report.row("sfu", f"forwarding, {PATH_WORDS[path]}: {burst['rate']:,} pkt/s -> {burst['n']} subscribers "
                   f"(pkt/s per SFU core, loss {burst['loss']:.1%})", f"{burst['pps_per_core']:,.0f}",
                   f"bare UDP loop {baseline:,.0f}", burst["pps_per_core"] / baseline,
                   f">= {GOAL_PPS:,} pkt/s per core")
        top = max(run["steps"], key=lambda r: r["pps_per_core"])
        report.row("sfu", f"forwarding, {PATH_WORDS[path]}, a camera + microphone -> {top['n']} subscribers "
                   "(pkt/s per SFU core)", f"{run['core']:,.0f}", f"bare UDP loop {baseline:,.0f}",
                   run["core"] / baseline, "(fixed costs per subscriber included)")
    if {"fast", "rtppacket"} <= runs.keys():
        fast, old = runs["fast"]["flood"], runs["rtppacket"]["flood"]
        report.row("sfu", f"forwarding, {PATH_WORDS['fast']} vs RtpPacket path (flood, pkt/s per SFU core)",
                   f"{fast['pps_per_core']:,.0f}", f"RtpPacket path {old['pps_per_core']:,.0f}",
                   fast["pps_per_core"] / old["pps_per_core"] if old["pps_per_core"] else None, "> 1x")
        fast, old = runs["fast"], runs["rtppacket"]
        fl, ol = fast["lesson"], old["lesson"]
        report.row("sfu", f"lesson (camera + screen + microphone -> {fl['n']} pupils), fast path: loss, p50",
                   f"{fl['loss']:.1%}, {fl['p50_ms']:.1f} ms", f"RtpPacket path {ol['loss']:.1%}, "
                   f"{ol['p50_ms']:.1f} ms", None, "loss <= 2%, receivers not the bottleneck")
    else:
        for path, run in runs.items():
            lesson = run["lesson"]
            report.row("sfu", f"lesson ({lesson['n']} pupils), {path} path: loss, p50",
                       f"{lesson['loss']:.1%}, {lesson['p50_ms']:.1f} ms", "—", None, "loss <= 2%")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max", type=int, default=99)
    parser.add_argument("--seconds", type=float, default=6)
    parser.add_argument("--pupils", type=int, default=20, help="pupils of each lesson of the two-node row")
    parser.add_argument("--paths", type=lambda v: [p for p in v.split(",") if p], default=list(PATHS),
                        help="forwarding paths to measure, of: " + ", ".join(PATHS))
    parser.add_argument("--flood-rate", type=int, default=2000, help="packets/s of the flood's one stream")
    parser.add_argument("--flood-n", type=int, default=40, help="subscribers of the flood")
    parser.add_argument("--procs", type=int, default=2,
                        help="processes the subscribers of a fan-out (10 or more) and the lesson are spread over")
    parser.add_argument("--aiortc-receivers", action="store_true",
                        help="subscribers receive through aiortc's receive path (as before: the bottleneck at 99)")
    parser.add_argument("--nodes-only", action="store_true", help="only the two-node row")
    parser.add_argument("--no-nodes", action="store_true", help="without the two-node row")
    args = parser.parse_args()
    unknown = [p for p in args.paths if p not in PATHS]
    if unknown:
        parser.error(f"unknown path {', '.join(unknown)}: choose from {', '.join(PATHS)}")
    log_dir = REPO / "var" / "bench"
    log_dir.mkdir(parents=True, exist_ok=True)
    if args.nodes_only:
        print_two_nodes(two_nodes(log_dir, args.pupils, args.seconds))
        return
    print("SFU forwarding: 1 publisher -> N subscribers (SFU in its own process; peers are aiortc, counting)")
    baseline = udp_baseline()
    print(f"baseline, bare UDP relay loop in Python (recv once, sendto 50x): {baseline:,.0f} packets/s per core")
    micro = {}
    for path in args.paths:
        micro[path] = m = in_process(path)
        print(f"in one process, {path} path, 1 packet -> {m['n']} subscribers: {m['pps_per_core']:,.0f} pkt/s per "
              f"core ({m['us_per_packet']:.1f} µs a packet); the bare sendto loop of the same process: "
              f"{m['bare_pps_per_core']:,.0f} ({m['pps_per_core'] / m['bare_pps_per_core']:.2f}x)", flush=True)
    runs = {path: forwarding(log_dir, path, args, baseline) for path in args.paths}
    if {"fast", "rtppacket"} <= runs.keys() and runs["rtppacket"]["core"]:
        print(f"fast path / RtpPacket path, pkt/s per core: {runs['fast']['core'] / runs['rtppacket']['core']:.2f}x")
    print(json.dumps({"baseline_pps_per_core": baseline, "in_process": micro, "runs": runs}, default=float))
    record(runs, baseline, micro)
    if not args.no_nodes:
        print_two_nodes(two_nodes(log_dir, args.pupils, args.seconds))


if __name__ == "__main__":
    main()
    print(report.table(report.rows("sfu")))
