"""The SFU's forwarding per core (issue #17, goal: >= 120k packets/s per core), two ways.

In one process (the default), on both paths: the SFU's own ``PublishedTrack.on_rtp`` and ``Slot`` with real SRTP
sessions (pylibsrtp, keyed as DTLS would, the profile aiortc negotiates: ``sfu.testing``) and the production writers
(``aiortc_adapter.fast_sender`` for ``SFERA_SFU_FAST_PATH=1``, ``raw_sender`` for ``0``) on real UDP sockets to N
receiving sockets (one per subscriber, as ICE gives each its own); only DTLS and ICE are not there. Next to it, in
the same process: the bare loop (``sendto`` of the same bytes to the N sockets, nothing else). Measured in CPU
time; a cProfile of the forwarding with ``--profile``. ``bench.sfu`` runs it for its per-packet row: the last line
printed is one JSON object.

Through a real SFU process (``--process``): ``python -m sfu`` with aiortc peers (``bench.sfu.flood``: one
publisher's stream raised to ``--flood-rate`` packets/s to ``--flood-n`` light subscribers), the SFU's CPU time
read from /proc; next to it, in the same run, the bare UDP relay loop in Python (``bench.sfu.udp_baseline``: recv
once, sendto 50 times). ``--profile``: the SFU's own cProfile over the measured seconds.

    PYTHONPATH=.:services/sfu python -m bench.sfu_forward [--n 50] [--packets 4000] [--profile]
    PYTHONPATH=.:services/sfu python -m bench.sfu_forward --process [--flood-n 40] [--flood-rate 2000] [--procs 2]
                                                          [--seconds 6] [--paths fast,receive,rtppacket]
                                                          [--rounds 3] [--profile] [--perf]

``receive`` is the fast path with the receive shortcut (``SFERA_SFU_FAST_RECEIVE=1``: the publisher's SRTP taken
from the ICE socket past aioice's queue, aiortc's DTLS receive task and ``RtpPacket``); ``--rounds``: the paths
taken in turns that many times (a fresh SFU process each), each path's figure the median of its rounds, and the
shortcut's next to the fast path's of the same run. ``drain``: the shortcut reading what waits at a wake-up
(``SFERA_SFU_RECEIVE_BATCH=32``); ``batch``: that, and each subscriber's packets of a wake-up in one ``sendmmsg``
(``SFERA_SFU_SEND_BATCH=1``, the default), next to ``drain``'s of the same run; ``batch8``: at most 8 packets a
wake-up (so a ``sendmmsg``; a starved SFU finds 32 waiting: each round prints the packets a ``sendmmsg``
carried). ``--perf``: ``perf record -g`` of the SFU over the measured seconds, its CPU split into user, the kernel's
send, the loopback RECEIVE path (the subscribers' side, run in the SFU's sendto on loopback: a NIC would take the
datagram) and scheduling, and a figure of packets per core of the SFU's CPU less that receive path. In one process
also: bursts of 10 packets to 40 subscribers, a ``sendto`` each vs one ``sendmmsg`` a subscriber and burst
(``send_side``).

Each prints its rows (``bench.report``) at its end.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import socket
import time
from types import SimpleNamespace

from aiortc.rtp import RtpPacket

from bench import report
from sfu.forward import PublishedTrack, Slot
from sfu.testing import PROFILE, Owner, received, wire


class Nowhere:
    """A socket that sends nothing (``measure``'s figure without the kernel's part)."""

    def sendto(self, data, address) -> int:
        return len(data)


async def measure(n: int, packets: int, size: int, profile: bool) -> dict:
    sinks = []
    for _ in range(n):
        sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sink.bind(("127.0.0.1", 0))
        sinks.append(sink)
    wires = []
    track = PublishedTrack(Owner(), "camera", "video", SimpleNamespace(), set())
    for i, sink in enumerate(sinks):
        wires.append(stub := await wire(1000 + i, sink.getsockname()))
        slot = Slot(Owner(), str(i), "video", stub.sender, 96)
        slot.waiting_keyframe = False
        slot.source = track
        track.slots.append(slot)
    payload = b"\x10" + os.urandom(size - 13)
    first = [RtpPacket(payload_type=96, sequence_number=s & 0xFFFF, timestamp=s * 3000, ssrc=5, payload=payload,
                       marker=s % 4 == 0) for s in range(packets)]

    async def forward(batch: list[RtpPacket]) -> float:
        started = time.process_time()
        for packet in batch:
            await track.on_rtp(packet)
        return time.process_time() - started

    await forward(first[:50])  # writers opened
    cpu = await forward(first[50:])
    sent = (packets - 50) * n
    stats = None
    if profile:
        more = [RtpPacket(payload_type=96, sequence_number=(packets + s) & 0xFFFF, timestamp=s * 3000, ssrc=5,
                          payload=payload) for s in range(500)]
        profiler = cProfile.Profile()
        profiler.enable()
        await forward(more)
        profiler.disable()
        stats = pstats.Stats(profiler)
    # the same forwarding with its datagrams dropped before the kernel: the SFU's own work a packet (Python and SRTP),
    # steadier than the whole on a loaded machine (the best of 5)
    real = [stub.source._sock for stub in wires]
    for stub in wires:
        stub.source._sock = Nowhere()
        stub.nominated[1] = SimpleNamespace(**vars(stub.pair))  # a new pair: the writer looks its socket up again
    rest = [RtpPacket(payload_type=96, sequence_number=(packets + 500 + s) & 0xFFFF, timestamp=s * 3000, ssrc=5,
                      payload=payload) for s in range(5 * 400)]
    own = min([await forward(rest[i * 400:(i + 1) * 400]) for i in range(5)]) / (400 * n)
    for stub, sock in zip(wires, real, strict=True):
        stub.source._sock = sock
    # the bare loop: the same number of datagrams of the same size to the same sockets, nothing else
    out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    data = os.urandom(size + 10)
    addresses = [s.getsockname() for s in sinks]
    started = time.process_time()
    for _ in range(packets - 50):
        for address in addresses:
            out.sendto(data, address)
    bare = time.process_time() - started
    for thing in (*sinks, out):
        thing.close()
    for stub in wires:
        stub.close()
    if stats is not None:
        stats.sort_stats("tottime").print_stats(12)
    return {"n": n, "path": "fast" if track.fast else "rtppacket", "srtp": PROFILE.openssl_profile.decode(),
            "pps_per_core": sent / cpu,
            "us_per_packet": cpu / sent * 1e6, "bare_pps_per_core": sent / bare, "own_us_per_packet": own * 1e6}


class Queue:
    """What aioice's ``StunProtocol`` hands a datagram that is not the shortcut's (none here: counted)."""

    queued = 0

    def data_received(self, data: bytes, component: int) -> None:
        self.queued += 1

    def protocol_lost(self, protocol) -> None:
        pass


async def receive_side(batch: int, bursts: int = 1000, burst: int = 10, size: int = 1100) -> float:
    """The receive shortcut's CPU a received packet in one process (µs), ``SFERA_SFU_RECEIVE_BATCH=batch``: a
    publisher's SRTP datagrams in bursts of ``burst`` (a video frame's packets) reach a real UDP endpoint with aioice's
    ``StunProtocol`` (select, asyncio's ``_read_ready``, ``recvfrom``, the shortcut's unprotect and header read,
    ``PublishedTrack.on_raw``) and a track with no subscriber; the CPU of the sending socket left out."""
    from aioice.ice import StunProtocol
    from pylibsrtp import Policy, Session

    from sfu.testing import ice_connection, policy

    os.environ["SFERA_SFU_FAST_PATH"] = os.environ["SFERA_SFU_FAST_RECEIVE"] = "1"
    os.environ["SFERA_SFU_RECEIVE_BATCH"] = str(batch)
    loop = asyncio.get_running_loop()
    key = os.urandom(PROFILE.key_length + PROFILE.salt_length)
    queue = Queue()
    transport, protocol = await loop.create_datagram_endpoint(lambda: StunProtocol(queue),
                                                              local_addr=("127.0.0.1", 0))
    protocol.local_candidate = SimpleNamespace(component=1)
    inbound = Session(policy(key, Policy.SSRC_ANY_INBOUND))
    receiver = SimpleNamespace(transport=SimpleNamespace(_rx_srtp=inbound, transport=SimpleNamespace(
        _connection=ice_connection(protocol))))
    track = PublishedTrack(Owner(), "camera", "video", receiver, set())
    outbound = Session(policy(key, Policy.SSRC_ANY_OUTBOUND))
    body = os.urandom(size - 12)
    datagrams = [outbound.protect(RtpPacket(payload_type=96, sequence_number=s & 0xFFFF, timestamp=s * 3000,
                                            ssrc=5, payload=body).serialize()) for s in range(bursts * burst + 1)]
    await track.on_rtp(RtpPacket.parse(inbound.unprotect(datagrams[0])))  # the SSRC known: the shortcut is on
    address = transport.get_extra_info("sockname")
    feeder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    feeding = 0.0
    started = time.process_time()
    for i in range(bursts):
        before = PublishedTrack.fast_received
        mark = time.process_time()
        for data in datagrams[1 + i * burst:1 + (i + 1) * burst]:
            feeder.sendto(data, address)
        feeding += time.process_time() - mark
        while PublishedTrack.fast_received < before + burst:
            await asyncio.sleep(0)
    cpu = time.process_time() - started - feeding
    feeder.close()
    transport.close()
    return cpu / (bursts * burst) * 1e6


async def send_side(batched: bool, n: int = 40, bursts: int = 300, burst: int = 10, size: int = 1000) -> float:
    """The forwarding's CPU a copy in one process (µs), what the receive shortcut hands the track: bursts of
    ``burst`` packets (``PublishedTrack.on_raw``, then the wake-up's ``flush``) to ``n`` subscribers, each one
    packet a ``sendto`` (``batched`` False: ``SFERA_SFU_SEND_BATCH=0``) or each subscriber's burst in one
    ``sendmmsg``; real SRTP sessions and UDP sockets, the receiving sockets read between bursts (not counted: no
    reader asleep to wake, so the kernel's part is the send and the loopback delivery)."""
    sinks = []
    for _ in range(n):
        sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sink.bind(("127.0.0.1", 0))
        sink.setblocking(False)
        sinks.append(sink)
    track = PublishedTrack(Owner(), "microphone", "audio", SimpleNamespace(), set())
    track.batched = batched
    wires = []
    for i, sink in enumerate(sinks):
        wires.append(stub := await wire(1000 + i, sink.getsockname()))
        slot = Slot(Owner(), str(i), "audio", stub.sender, 111)
        slot.source = track
        track.slots.append(slot)
    payload = os.urandom(size - 12)
    cpu = 0.0
    for b in range(bursts + 5):
        started = time.process_time()
        for i in range(burst):
            seq = b * burst + i
            track.on_raw(111, seq & 0xFFFF, seq * 960, 0, payload, None)
        track.flush()
        if b >= 5:  # the first bursts open the writers
            cpu += time.process_time() - started
        for sink in sinks:
            received(sink)
    for thing in (*sinks, *wires):
        thing.close()
    return cpu / (bursts * burst * n) * 1e6


PROCESS_PATHS = {  # the SFU's environment on each path through a process
    "fast": {"SFERA_SFU_FAST_PATH": "1", "SFERA_SFU_FAST_RECEIVE": "0", "SFERA_SFU_SEND_BATCH": "0"},
    "receive": {"SFERA_SFU_FAST_PATH": "1", "SFERA_SFU_FAST_RECEIVE": "1", "SFERA_SFU_RECEIVE_BATCH": "1",
                "SFERA_SFU_SEND_BATCH": "0"},
    "drain": {"SFERA_SFU_FAST_PATH": "1", "SFERA_SFU_FAST_RECEIVE": "1", "SFERA_SFU_RECEIVE_BATCH": "32",
              "SFERA_SFU_SEND_BATCH": "0"},
    "batch": {"SFERA_SFU_FAST_PATH": "1", "SFERA_SFU_FAST_RECEIVE": "1", "SFERA_SFU_RECEIVE_BATCH": "32",
              "SFERA_SFU_SEND_BATCH": "1"},
    # batched sending with at most 8 packets a wake-up (so a sendmmsg): what it does for an SFU that is not starved
    "batch8": {"SFERA_SFU_FAST_PATH": "1", "SFERA_SFU_FAST_RECEIVE": "1", "SFERA_SFU_RECEIVE_BATCH": "8",
               "SFERA_SFU_SEND_BATCH": "1"},
    "rtppacket": {"SFERA_SFU_FAST_PATH": "0", "SFERA_SFU_FAST_RECEIVE": "0", "SFERA_SFU_SEND_BATCH": "0"},
}
RECEIVERS = {"wake": 0.0, "batch": 0.002}  # the light subscribers: woken per datagram, or reading every 2 ms


def median_run(runs: list[dict]) -> dict:
    """The round whose packets per core is the median (the lower one of an even count)."""
    return sorted(runs, key=lambda r: r["pps_per_core"])[(len(runs) - 1) // 2]


def through_process(args: argparse.Namespace) -> dict:
    """The flood through a real SFU process on each of ``args.paths`` and each of ``args.receivers`` (in turns,
    ``args.rounds`` times), after the bare UDP relay loop of this run."""
    from bench.sfu import GOAL_PPS, REPO, SfuProcess, flood, loopback_receivers, perf_split, udp_baseline

    log_dir = REPO / "var" / "bench"
    log_dir.mkdir(parents=True, exist_ok=True)
    baseline = udp_baseline()
    print(f"bare UDP relay loop in Python (recv once, sendto 50x): {baseline:,.0f} packets/s per core", flush=True)
    out: dict = {"baseline_pps_per_core": baseline}
    # what a reader woken by each datagram costs a sender on loopback, without the SFU (in turns, median of 3)
    loopback: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    for _ in range(3):
        for woken, got in loopback.items():
            got.append(loopback_receivers(woken))
    woken_us, batch_us = (sorted(loopback[w], key=sum)[1] for w in (True, False))
    out["loopback_woken_us"], out["loopback_batch_us"] = woken_us, batch_us
    print(f"sendto on loopback, 2,000 x 40 datagrams/s to 2 reading processes: user + system {woken_us[0]:.2f} + "
          f"{woken_us[1]:.2f} µs a datagram with readers woken by each, {batch_us[0]:.2f} + {batch_us[1]:.2f} µs with "
          f"readers reading every 2 ms (rounds {loopback})", flush=True)
    report.row("sfu", "sendto on loopback to readers in 2 other processes (2,000 x 40 datagrams/s; µs of the "
               "sender's CPU a datagram, user + system, median of 3 in turns): readers woken by each datagram",
               f"{woken_us[0]:.2f} + {woken_us[1]:.2f} µs", f"readers every 2 ms {batch_us[0]:.2f} + {batch_us[1]:.2f} "
               "µs", sum(woken_us) / sum(batch_us) if sum(batch_us) else None, "(the bench's receivers' share)")
    variants = [(path, receivers) for receivers in args.receivers for path in args.paths]
    runs: dict[tuple[str, str], list[dict]] = {variant: [] for variant in variants}
    for round_ in range(args.rounds):
        for path, receivers in variants:
            profile = log_dir / f"sfu-forward-{path}.prof" if args.profile and round_ == 0 else None
            perf = log_dir / f"sfu-forward-{path}-{receivers}.perf" if args.perf else None
            sfu = SfuProcess(log_dir, f"forward-{path}", profile=profile, extra_env=PROCESS_PATHS[path], perf=perf)
            try:
                r = asyncio.run(flood(sfu, args.flood_n, args.seconds, args.flood_rate, procs=args.procs,
                                      batch=RECEIVERS[receivers]))
            finally:
                sfu.stop()
            if perf is not None and perf.exists():
                # the SFU's CPU by where its samples were, and the figure without the loopback receive path
                r["perf"] = split = perf_split(perf)
                rest = r["cpu"] * (1 - split["receive"])
                r["pps_per_core_without_receive"] = r["out_pps"] / rest if rest else 0.0
                print(f"  perf ({split['samples']:,.0f} samples): user {split['user']:.1%}, kernel send and the rest "
                      f"{split['send']:.1%}, loopback receive {split['receive']:.1%}, schedule {split['schedule']:.1%}"
                      f" -> {r['pps_per_core_without_receive']:,.0f} pkt/s per core of the SFU's CPU less the "
                      f"loopback receive", flush=True)
            runs[path, receivers].append(r)
            per_send = f"({r['packets_a_sendmmsg']:.1f} packets a sendmmsg) " if r["packets_a_sendmmsg"] else ""
            print(f"round {round_ + 1}, {path} path, receivers {receivers}: 1 stream of {r['rate']:,} pkt/s (sent "
                  f"{r['pumped_pps']:,.0f}/s, the SFU took in {r['in_pps']:,.0f}/s, {r['shortcut_share']:.0%} by the "
                  f"receive shortcut) -> "
                  f"{r['n']} subscribers: {r['out_pps']:,.0f} pkt/s out on {r['cpu']:.2f} of the SFU's core "
                  f"{per_send}"
                  f"(user {r['user_cpu']:.2f}, system {r['system_cpu']:.2f}; {r['involuntary_cs']:,.0f} "
                  f"preemptions/s, {r['voluntary_cs']:,.0f} sleeps/s) = {r['pps_per_core']:,.0f} pkt/s per core "
                  f"({r['pps_per_core'] / baseline:.2f}x the UDP loop), loss {r['loss']:.1%}, p50 "
                  f"{r['p50_ms']:.1f} ms; the same peers idle: {r['idle_cpu']:.3f} of a core, so forwarding alone "
                  f"{r['forwarding_pps_per_core']:,.0f} pkt/s per core", flush=True)
    for path, receivers in variants:
        r = median_run(runs[path, receivers])
        out[f"{path}/{receivers}"] = r
        r["rounds"] = [x["pps_per_core"] for x in runs[path, receivers]]
        per_copy = 1e6 / r["pps_per_core"] if r["pps_per_core"] else 0
        user_share = r["user_cpu"] / r["cpu"] if r["cpu"] else 0
        who = "" if receivers == "wake" else ", receivers reading every 2 ms (not woken per datagram)"
        report.row("sfu", f"forwarding through an SFU process, {path} path{who}: {r['rate']:,} pkt/s -> {r['n']} "
                   f"subscribers (pkt/s per SFU core, median of {args.rounds}, loss {r['loss']:.1%}; µs a copy "
                   f"user + system)", f"{r['pps_per_core']:,.0f} ({per_copy * user_share:.1f} + "
                   f"{per_copy * (1 - user_share):.1f} µs)", f"bare UDP relay loop {baseline:,.0f}",
                   r["pps_per_core"] / baseline, f">= {GOAL_PPS:,} pkt/s per core")
        report.row("sfu", f"the same, forwarding alone: the SFU's CPU less its CPU with the same peers idle "
                   f"({r['idle_cpu']:.3f} of a core)", f"{r['forwarding_pps_per_core']:,.0f}",
                   f"bare UDP relay loop {baseline:,.0f}", r["forwarding_pps_per_core"] / baseline,
                   "(what a busier SFU forwards per core)")
        with_perf = [x for x in runs[path, receivers] if "perf" in x]
        if with_perf:
            p = sorted(with_perf, key=lambda x: x["pps_per_core_without_receive"])[(len(with_perf) - 1) // 2]
            split = p["perf"]
            report.row("sfu", f"the same, {path} path{who}, without the loopback receive path (the SFU's CPU less "
                       f"its perf samples under net_rx_action: the subscribers' side, which a NIC would take; user "
                       f"{split['user']:.0%}, kernel send {split['send']:.0%}, loopback receive "
                       f"{split['receive']:.0%}, schedule {split['schedule']:.0%} of its samples; median of "
                       f"{len(with_perf)})", f"{p['pps_per_core_without_receive']:,.0f}",
                       f"with it {p['pps_per_core']:,.0f}", p["pps_per_core_without_receive"] / p["pps_per_core"]
                       if p["pps_per_core"] else None, f">= {GOAL_PPS:,} pkt/s per core")
        profile = log_dir / f"sfu-forward-{path}.prof" if args.profile else None
        if profile is not None and profile.exists():
            print(f"the SFU's cProfile over the measured seconds ({profile}, round 1), by own time:")
            pstats.Stats(str(profile)).sort_stats("tottime").print_stats(20)
    for new_path, old_path, what in (("receive", "fast", "receive shortcut (SFERA_SFU_FAST_RECEIVE=1) vs without"),
                                     ("drain", "receive", "receive shortcut reading up to 32 datagrams a wake-up "
                                                          "(SFERA_SFU_RECEIVE_BATCH=32) vs one"),
                                     ("batch", "drain", "a wake-up's packets to each subscriber in one sendmmsg "
                                                        "(SFERA_SFU_SEND_BATCH=1) vs a sendto each"),
                                     ("batch8", "drain", "a wake-up's packets (at most 8: SFERA_SFU_RECEIVE_BATCH=8) "
                                                         "to each subscriber in one sendmmsg vs a sendto each")):
        for receivers in args.receivers:
            if (new_path, receivers) not in runs or (old_path, receivers) not in runs:
                continue
            new, old = out[f"{new_path}/{receivers}"], out[f"{old_path}/{receivers}"]
            print(f"{new_path} vs {old_path} (receivers {receivers}), pkt/s per core by round: {new['rounds']} vs "
                  f"{old['rounds']}")
            report.row("sfu", f"forwarding through an SFU process, {what}, receivers {receivers}: {new['rate']:,} "
                       f"pkt/s -> {new['n']} subscribers (pkt/s per SFU core, median of {args.rounds} in turns)",
                       f"{new['pps_per_core']:,.0f}", f"{old_path} {old['pps_per_core']:,.0f}",
                       new["pps_per_core"] / old["pps_per_core"] if old["pps_per_core"] else None, "> 1x")
    for path in args.paths:
        if {(path, "wake"), (path, "batch")} <= runs.keys():
            woken, batched = out[f"{path}/wake"], out[f"{path}/batch"]
            report.row("sfu", f"the bench's receivers' share of the SFU's CPU, {path} path: receivers reading every "
                       f"2 ms vs woken by each datagram (pkt/s per SFU core; system CPU {batched['system_cpu']:.2f} "
                       f"vs {woken['system_cpu']:.2f} of a core, preemptions/s {batched['involuntary_cs']:,.0f} vs "
                       f"{woken['involuntary_cs']:,.0f})", f"{batched['pps_per_core']:,.0f}",
                       f"woken {woken['pps_per_core']:,.0f}",
                       batched["pps_per_core"] / woken["pps_per_core"] if woken["pps_per_core"] else None,
                       "(the honest figure is the woken one)")
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--packets", type=int, default=4000)
    parser.add_argument("--size", type=int, default=1100, help="bytes of each RTP packet")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--process", action="store_true", help="the flood through a real SFU process")
    parser.add_argument("--flood-rate", type=int, default=2000, help="packets/s of the flood's one stream")
    parser.add_argument("--flood-n", type=int, default=40, help="subscribers of the flood")
    parser.add_argument("--seconds", type=float, default=6)
    parser.add_argument("--procs", type=int, default=2,
                        help="with --process: processes the flood's subscribers are spread over (1: with the pump)")
    parser.add_argument("--paths", type=lambda v: [p for p in v.split(",") if p], default=["fast"],
                        help="with --process: forwarding paths, of " + ", ".join(PROCESS_PATHS))
    parser.add_argument("--rounds", type=int, default=1, help="with --process: the paths taken in turns this often")
    parser.add_argument("--perf", action="store_true",
                        help="with --process: perf record -g of the SFU over the measured seconds (its CPU split into "
                        "user, kernel send, loopback receive and schedule; a figure without the loopback receive)")
    parser.add_argument("--receivers", type=lambda v: [p for p in v.split(",") if p], default=["wake"],
                        help="with --process: the light subscribers, of " + ", ".join(RECEIVERS) + " (batch: they "
                        "read every 2 ms instead of being woken by each datagram; the loopback wake-up and the "
                        "preemption it causes are charged to the SFU's sendto)")
    args = parser.parse_args()
    if args.process:
        unknown = [p for p in args.paths if p not in PROCESS_PATHS]
        if unknown:
            parser.error(f"unknown path {', '.join(unknown)}: choose from {', '.join(PROCESS_PATHS)}")
        unknown = [r for r in args.receivers if r not in RECEIVERS]
        if unknown:
            parser.error(f"unknown receivers {', '.join(unknown)}: choose from {', '.join(RECEIVERS)}")
        print(json.dumps(through_process(args), default=float), flush=True)
        print(report.table(report.rows("sfu")), flush=True)
        return
    m = asyncio.run(measure(args.n, args.packets, args.size, args.profile))
    # the receive side: one datagram a wake-up (SFERA_SFU_RECEIVE_BATCH=1) vs what waits read at once, in turns
    reads: dict[int, list[float]] = {1: [], 32: []}
    for _ in range(3):
        for batch, got in reads.items():
            got.append(asyncio.run(receive_side(batch, size=args.size)))
    one, drained = (sorted(reads[b])[1] for b in (1, 32))
    m["receive_us_one_a_wakeup"], m["receive_us_drained"] = one, drained
    print(f"receiving in one process, bursts of 10 datagrams: {one:.1f} µs a packet one a wake-up, {drained:.1f} µs "
          f"read at once (rounds {reads})", flush=True)
    report.row("sfu", "receiving in one process (receive shortcut, bursts of 10 datagrams: µs of CPU a received "
               "packet, median of 3 in turns), what waits read at one wake-up (SFERA_SFU_RECEIVE_BATCH=32)",
               f"{drained:.1f} µs", f"one a wake-up {one:.1f} µs", one / drained if drained else None, "> 1x")
    # the send side: bursts of 10 packets to 40 subscribers, a sendto each vs each subscriber's burst in one sendmmsg
    sends: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(3):
        for batched, got in sends.items():
            got.append(asyncio.run(send_side(batched)))
    single, batched_us = (sorted(sends[b])[1] for b in (False, True))
    m["send_us_a_copy_sendto"], m["send_us_a_copy_sendmmsg"] = single, batched_us
    print(f"sending in one process, bursts of 10 packets to 40 subscribers: {single:.2f} µs of CPU a copy with a "
          f"sendto each, {batched_us:.2f} µs with each subscriber's burst in one sendmmsg (rounds {sends})",
          flush=True)
    report.row("sfu", "sending in one process (bursts of 10 packets to 40 subscribers, real SRTP and UDP sockets: µs "
               "of CPU a copy, user + system, median of 3 in turns), each subscriber's burst in one sendmmsg "
               "(SFERA_SFU_SEND_BATCH=1)", f"{batched_us:.2f} µs", f"a sendto each {single:.2f} µs",
               single / batched_us if batched_us else None, "> 1x")
    report.row("sfu", f"forwarding in one process, {m['path']} path: 1 packet -> {m['n']} subscribers "
               f"({m['srtp']}, pkt/s per core)", f"{m['pps_per_core']:,.0f} ({m['us_per_packet']:.1f} µs a packet, "
               f"{m['own_us_per_packet']:.2f} µs of it before sendto)",
               f"bare sendto loop {m['bare_pps_per_core']:,.0f}", m["pps_per_core"] / m["bare_pps_per_core"],
               ">= 120,000 pkt/s per core")
    print(report.table(report.rows("sfu")), flush=True)
    print(json.dumps(m), flush=True)  # the last line: bench.sfu reads it


if __name__ == "__main__":
    main()
