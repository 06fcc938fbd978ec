"""The SFU's forwarding: 1 publisher (camera about 500 kbps + microphone, and for the
lesson also a screen) to N subscribers, N rising until loss or the SFU's core
saturates; and a room of 25 microphones. The SFU runs as its own process (one core
of its own); the peers are aiortc in this process (they count packets, they do not
decode).

Baseline of the same run: a bare UDP relay loop in Python (recvfrom, then sendto to
N addresses), the ceiling for forwarding from Python on this machine. Reported:
forwarded packets per second per core of the SFU next to the baseline's, forward
latency (publisher's send to subscriber's receive, same clock), loss, and the
largest N one core carries.

Then SFU nodes (issue #17): one node carrying one lesson (teacher camera + screen + microphone to
``--pupils`` pupils), then two nodes carrying two lessons at once, placed by calls' node registry (the least
loaded node); each lesson's peers in a process of their own. Reported: packets/s out per node next to the lone
node's of the same run (a ratio), and the two together.

    python -m bench.sfu [--max 99] [--seconds 6] [--pupils 20] [--nodes-only]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import multiprocessing
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import jwt

from bench.pipeline import percentile
from shared.contracts.join_token import TOKEN_AUDIENCE, join_token_ttl, token_secret
from tests.webrtc import Peer

REPO = Path(__file__).resolve().parent.parent
STEPS = (1, 5, 10, 20, 40, 60, 80, 99)
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(("sfera_sfu_forwarded_packets_total", "sfera_sfu_codec_instances",
                            "sfera_sfu_received_packets_total")):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def received(port: int) -> float:
    return sum(v for k, v in scrape(port).items() if k.startswith("sfera_sfu_received_packets_total"))


def forwarded(port: int) -> float:
    return sum(v for k, v in scrape(port).items() if k.startswith("sfera_sfu_forwarded_packets_total"))


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


# -- the SFU ------------------------------------------------------------------------------------------------------
class SfuProcess:
    def __init__(self, log_dir: Path, name: str = "bench"):
        self.name = name
        self.port = free_port()
        env = {**os.environ, "SFERA_SFU_PORT": str(self.port), "SFERA_SFU_NODE": name,
               "SFERA_AMQP_URI": f"amqp://guest:guest@127.0.0.1:{free_port()}/", "SFERA_LOG_LEVEL": "ERROR",
               "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "services" / "sfu")])}
        self.log = open(log_dir / f"sfu-{name}.log", "wb")
        self.process = subprocess.Popen([sys.executable, "-m", "sfu"], env=env, stdout=self.log,
                                        stderr=subprocess.STDOUT, cwd=REPO)
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("the SFU did not start") from None
                time.sleep(0.2)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=15)
        self.log.close()


class Latency:
    """Publisher's send time of each payload, and subscribers' receive times."""

    def __init__(self):
        self.sent: dict[bytes, float] = {}
        self.samples: list[float] = []

    def hook_publisher(self, peer: Peer) -> None:
        transport = peer.pc.getTransceivers()[0].sender.transport
        original = transport._send_rtp

        async def send(data: bytes) -> None:
            if len(data) > 200 and 128 <= data[0] < 192 and not 192 <= data[1] <= 223:  # RTP, not RTCP
                self.sent[hashlib.blake2b(data[-64:], digest_size=8).digest()] = time.perf_counter()
            await original(data)

        transport._send_rtp = send

    def on_packet(self, mid: str, packet) -> None:
        if len(packet.payload) > 150:
            at = self.sent.get(hashlib.blake2b(packet.payload[-64:], digest_size=8).digest())
            if at is not None and len(self.samples) < 200_000:
                self.samples.append(time.perf_counter() - at)


async def fan_out(sfu: SfuProcess | Node, n: int, seconds: float, lesson: bool, call_id: str | None = None) -> dict:
    call_id = call_id or str(uuid.uuid4())
    latency = Latency()
    publisher = Peer(sfu.url, token(call_id, str(uuid.uuid4()), ["subscribe", "audio", "video", "screen"], "admin"),
                     camera_luma=90, tone_hz=440, screen_luma=200 if lesson else None, video_slots=0,
                     audio_slots=0, decode=False, noise=True)
    await publisher.connect()
    latency.hook_publisher(publisher)
    subscribers = []
    for _ in range(n):
        peer = Peer(sfu.url, token(call_id, str(uuid.uuid4()), ["subscribe"], "viewer"), video_slots=2,
                    audio_slots=1, decode=False)
        peer.on_packet = latency.on_packet
        subscribers.append(peer)
    await asyncio.gather(*(p.connect() for p in subscribers))
    # everyone connected and receiving
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and sum(1 for p in subscribers if sum(
            r.frames for r in p.received.values()) > 20) < n:
        await asyncio.sleep(0.2)
    await asyncio.sleep(1.0)
    latency.samples.clear()
    got0 = sum(r.frames for p in subscribers for r in p.received.values())
    fwd0, cpu0, wall0 = forwarded(sfu.port), cpu_seconds(sfu.pid), time.monotonic()
    await asyncio.sleep(seconds)
    fwd1, cpu1, wall1 = forwarded(sfu.port), cpu_seconds(sfu.pid), time.monotonic()
    got1 = sum(r.frames for p in subscribers for r in p.received.values())
    for peer in (publisher, *subscribers):
        await peer.close()
    wall = wall1 - wall0
    out_pps = (fwd1 - fwd0) / wall
    cpu = (cpu1 - cpu0) / wall
    lat = sorted(latency.samples)
    return {"n": n, "out_pps": out_pps, "cpu": cpu, "pps_per_core": out_pps / cpu if cpu else 0,
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max", type=int, default=99)
    parser.add_argument("--seconds", type=float, default=6)
    parser.add_argument("--pupils", type=int, default=20, help="pupils of each lesson of the two-node row")
    parser.add_argument("--nodes-only", action="store_true", help="only the two-node row")
    args = parser.parse_args()
    log_dir = REPO / "var" / "bench"
    log_dir.mkdir(parents=True, exist_ok=True)
    if args.nodes_only:
        print_two_nodes(two_nodes(log_dir, args.pupils, args.seconds))
        return
    print("SFU forwarding: 1 publisher -> N subscribers (SFU in its own process; peers are aiortc, counting)")
    baseline = udp_baseline()
    print(f"baseline, bare UDP relay loop in Python (recv once, sendto 50x): {baseline:,.0f} packets/s per core")
    sfu = SfuProcess(log_dir)
    results = []
    try:
        print(f"{'N':>4} {'out pkt/s':>10} {'SFU cores':>9} {'pkt/s/core':>11} {'vs UDP loop':>11} "
              f"{'loss':>6} {'p50 ms':>7} {'p99 ms':>7}")
        for n in [s for s in STEPS if s <= args.max]:
            r = asyncio.run(fan_out(sfu, n, args.seconds, lesson=False))
            results.append(r)
            print(f"{r['n']:>4} {r['out_pps']:>10,.0f} {r['cpu']:>9.2f} {r['pps_per_core']:>11,.0f} "
                  f"{r['pps_per_core'] / baseline:>10.2f}x {r['loss']:>6.1%} {r['p50_ms']:>7.1f} {r['p99_ms']:>7.1f}",
                  flush=True)
            if r["cpu"] > 0.95 or r["loss"] > 0.02:
                break
        fits = [r["n"] for r in results if r["cpu"] <= 0.95 and r["loss"] <= 0.02]
        per_sub = results[-1]["out_pps"] / results[-1]["n"] if results else 0
        core = max(r["pps_per_core"] for r in results) if results else 0
        print(f"largest N measured within one core and 2% loss: {max(fits) if fits else 0}; "
              f"at {core:,.0f} pkt/s per core one core would carry about {core / per_sub:,.0f} subscribers "
              f"({per_sub:,.0f} pkt/s each)")
        lesson = asyncio.run(fan_out(sfu, min(99, args.max), args.seconds, lesson=True))
        print(f"lesson: teacher camera + screen + microphone -> {lesson['n']} pupils: {lesson['out_pps']:,.0f} "
              f"pkt/s out on {lesson['cpu']:.2f} of a core, loss {lesson['loss']:.1%}, "
              f"p50 {lesson['p50_ms']:.1f} ms, p99 {lesson['p99_ms']:.1f} ms")
        mics = asyncio.run(microphones(sfu, 25, args.seconds))
        print(f"25 microphones in one room (each hears the 3 loudest): {mics['in_pps']:,.0f} pkt/s in, "
              f"{mics['out_pps']:,.0f} pkt/s out, {mics['cpu']:.2f} of a core, loss {mics['loss']:.1%}")
        codecs = {k: v for k, v in scrape(sfu.port).items() if k.startswith("sfera_sfu_codec_instances")}
        print(f"codecs created in the SFU: {int(sum(codecs.values()))}")
        print(json.dumps({"baseline_pps_per_core": baseline, "steps": results, "lesson": lesson,
                          "microphones": mics}, default=float))
    finally:
        sfu.stop()
    print_two_nodes(two_nodes(log_dir, args.pupils, args.seconds))


if __name__ == "__main__":
    main()
