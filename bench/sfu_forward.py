"""The SFU's forwarding of one packet to N subscribers, in one process, on both paths (issue #17): the SFU's own
``PublishedTrack.on_rtp`` and ``Slot`` with real SRTP sessions (pylibsrtp, as DTLS would key them) and the
production writers (``aiortc_adapter.fast_sender`` for ``SFERA_SFU_FAST_PATH=1``, ``raw_sender`` for ``0``) on
real UDP sockets to N receiving sockets (one per subscriber, as ICE gives each its own); only DTLS and ICE are not
there. Next to it, in the same process: the bare loop (``sendto`` of the same bytes to the N sockets, nothing
else). Measured in CPU time; a cProfile of the forwarding with ``--profile``.

    PYTHONPATH=.:services/sfu python -m bench.sfu_forward [--n 50] [--packets 4000] [--profile]

``bench.sfu`` runs it for its per-packet row; it prints one JSON line.
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

from sfu.forward import PublishedTrack, Slot
from sfu.testing import PROFILE, Owner, wire


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
            "us_per_packet": cpu / sent * 1e6, "bare_pps_per_core": sent / bare}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--packets", type=int, default=4000)
    parser.add_argument("--size", type=int, default=1100, help="bytes of each RTP packet")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure(args.n, args.packets, args.size, args.profile))), flush=True)


if __name__ == "__main__":
    main()
